"""Key entries by their place in the owner's history: (owner_id, created_on, id).

History pages and as-of balances seek by time within an owner, newest first. Making that
order the primary key serves both with the index the table needs anyway, rather than a
second one beside (owner_id, id): id alone already never repeats (it comes from a
sequence), so the wider key identifies rows just as well.
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_pkey,"
        " ADD CONSTRAINT entries_pkey PRIMARY KEY (owner_id, created_on, id)"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE entries DROP CONSTRAINT entries_pkey,"
        " ADD CONSTRAINT entries_pkey PRIMARY KEY (owner_id, id)"
    )
