"""The ledger: append-only entries and a stored balance per owner.

Every rule that must hold for every writer lives here, in the database: the balance row is
the per-owner lock that orders writes, CHECK constraints forbid negative balances, the
(owner_id, nonce) key makes writes idempotent, and a trigger refuses UPDATE, DELETE and
TRUNCATE on entries. Every key starts with owner_id so the tables can be distributed by
owner (Citus) unchanged.

This revision first installed create_entry(); its source now lives once, in
migrations/sql/, which `migrate` installs at its newest version after the revisions
(graphql_ledger/storage/functions.py). Every upgrade runs to head in one transaction, so the
function versions of the revisions in between never served a write and are not kept.
"""

from alembic import op

from graphql_ledger.storage.functions import install_functions

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE balances (
            owner_id     text        NOT NULL PRIMARY KEY,
            balance      integer     NOT NULL CHECK (balance >= 0),
            last_updated timestamptz NOT NULL
        )
        """
    )
    # id comes from a sequence drawn while the owner's balance row is locked, so within
    # one owner ids grow in commit order (history pages by it); it needs no key of its own.
    op.execute(
        """
        CREATE TABLE entries (
            owner_id      text        NOT NULL,
            id            bigint      GENERATED ALWAYS AS IDENTITY,
            operation     text        NOT NULL,
            amount        integer     NOT NULL,
            balance_after integer     NOT NULL CHECK (balance_after >= 0),
            nonce         text        NOT NULL,
            created_on    timestamptz NOT NULL,
            PRIMARY KEY (owner_id, id),
            CONSTRAINT entries_owner_nonce_key UNIQUE (owner_id, nonce)
        )
        """
    )
    install_functions("refuse_entry_change")
    op.execute(
        """
        CREATE TRIGGER entries_are_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_entry_change()
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS create_entry(text, text, integer, text)")
    op.execute("DROP TABLE entries")
    op.execute("DROP FUNCTION refuse_entry_change()")
    op.execute("DROP TABLE balances")
