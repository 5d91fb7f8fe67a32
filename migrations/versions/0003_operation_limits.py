"""Operation limits: at most once per owner ever, or once per owner per UTC day.

An entry of a limited operation records its period in limit_key ('once', or the UTC date
of its created_on), and a partial unique index on (owner_id, operation, limit_key) makes a
second one impossible for every writer, whatever its nonce. create_entry() answers
'limit_reached' with the instant the operation is allowed again (NULL for never).

The create_entry() this revision installed is not kept: every upgrade runs to head in one
transaction, so only head's functions (migrations/sql/, installed by `migrate`) ever serve.
"""

from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.execute("ALTER TABLE entries ADD COLUMN limit_key text")
    op.execute(
        "CREATE UNIQUE INDEX entries_owner_limit_key ON entries (owner_id, operation, limit_key)"
        " WHERE limit_key IS NOT NULL"
    )


def downgrade() -> None:
    raise NotImplementedError(
        "0003 is not reversible: limited entries would lose what enforces their limit"
    )
