"""One CHECK per table for the shape of its rows (issue 16), each a PL/pgSQL function.

PostgreSQL prepares every CHECK constraint of a table again for each statement that
writes a row of it, and the write functions write one row per statement: the nine small
CHECKs of entries cost about 30 µs of each insert, one call of ledger_entry_is_well_formed
about 5 (bench/README.md). The rules are unchanged; each table's are now one constraint:
entries_are_well_formed, balances_held_within_balance (no figure below 0, held + expiring
within the balance) and holds_are_well_formed. The identifier CHECKs stay as they are (their
names say which identifier a write got wrong). The new constraints are added NOT VALID and
then validated, which reads each table once without blocking its writers.
"""

from alembic import op

from graphql_ledger.storage.functions import install_functions

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    install_functions(
        "ledger_entry_is_well_formed",
        "ledger_balance_is_within_bounds",
        "ledger_hold_is_well_formed",
    )
    op.execute(
        """
        ALTER TABLE entries
            DROP CONSTRAINT entries_balance_after_check,
            DROP CONSTRAINT entries_kind_check,
            DROP CONSTRAINT entries_quantity_check,
            DROP CONSTRAINT entries_metadata_check,
            DROP CONSTRAINT entries_hold_of_captures,
            DROP CONSTRAINT entries_refund_of_refunds,
            DROP CONSTRAINT entries_expiry_of_expiries,
            DROP CONSTRAINT entries_nonce_unless_expiry,
            DROP CONSTRAINT entries_expiring_credits,
            ADD CONSTRAINT entries_are_well_formed CHECK (ledger_entry_is_well_formed(
                amount, balance_after, nonce, created_on, quantity, kind, metadata, refund_of,
                hold_id, expires_at, expiry_of)) NOT VALID
        """
    )
    op.execute(
        """
        ALTER TABLE balances
            DROP CONSTRAINT balances_balance_check,
            DROP CONSTRAINT balances_held_check,
            DROP CONSTRAINT balances_expiring_check,
            DROP CONSTRAINT balances_held_within_balance,
            ADD CONSTRAINT balances_held_within_balance
                CHECK (ledger_balance_is_within_bounds(balance, held, expiring)) NOT VALID
        """
    )
    op.execute(
        """
        ALTER TABLE holds
            DROP CONSTRAINT holds_quantity_check,
            DROP CONSTRAINT holds_amount_check,
            DROP CONSTRAINT holds_metadata_check,
            DROP CONSTRAINT holds_check,
            DROP CONSTRAINT holds_status_check,
            DROP CONSTRAINT holds_ended_unless_open,
            DROP CONSTRAINT holds_capture_of_captured,
            ADD CONSTRAINT holds_are_well_formed CHECK (ledger_hold_is_well_formed(
                quantity, amount, metadata, created_on, expires_at, status, ended_on,
                capture_id)) NOT VALID
        """
    )
    for table, constraint in (
        ("entries", "entries_are_well_formed"),
        ("balances", "balances_held_within_balance"),
        ("holds", "holds_are_well_formed"),
    ):
        op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")


def downgrade() -> None:
    raise NotImplementedError("0011 follows 0003, which is not reversible")
