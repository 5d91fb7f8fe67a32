"""Operation rules in the database: each operation's amount and limit, with the instant
they took effect, and create_entry() reading them instead of trusting its caller.

operation_rules keeps every (amount, limit) an operation has had, so an audit can check
each entry against the amount in force when it was written. `graphql-ledger migrate`
records the apps' rules (never a serving process); a change of amount becomes a new row.
The first rule of an operation applies from '-infinity': entries written before rules were
recorded were written with it.

create_entry(owner, operation, nonce) now takes the amount and the limit from the rules in
force, so every writer, whichever version of the app it runs, applies the same ones, and a
writer cannot pass another amount or skip a limit. A write holds the rules' advisory lock
shared and a registration holds it exclusively, so a rule change takes effect between
writes: no entry is dated after a rule it was not written with. It answers `required` (the
credits an overdraft lacked) for InsufficientCredits. The previous signature,
create_entry(owner, operation, amount, nonce, limit), stays for the processes of the
previous release while a rollout replaces them; their amount and limit are ignored.

Those functions are installed by `migrate` from migrations/sql/, where their source lives once:
every upgrade runs to head in one transaction, so this revision's versions never served.

operation_rules has no owner_id: it is a small catalogue read by every write, which Citus
would keep as a reference table (copied to every node).
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE operation_rules (
            operation  text        NOT NULL,
            amount     integer     NOT NULL,
            limit_kind text        CHECK (limit_kind IN ('once', 'utc_day')),
            valid_from timestamptz NOT NULL,
            PRIMARY KEY (operation, valid_from)
        )
        """
    )


def downgrade() -> None:
    raise NotImplementedError("0005 follows 0003, which is not reversible")
