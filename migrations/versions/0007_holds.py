"""Quantities, metadata, entry kinds, holds and refunds (CONTRACT.md section 4).

entries gains:
- quantity: the units of the operation (amount = the rule's amount x quantity); NULL for one
  unit, so that the common entry stores nothing more;
- kind: 'capture', 'refund' or 'expiry'; NULL for an operation's entry, likewise;
- metadata: the client's object of strings (a GIN index over the entries that have one
  serves the history's metadata filter);
- refund_of: for a REFUND, the entry it reverses; at most one per original
  (entries_owner_refund_key);
- hold_id: for a CAPTURE, its hold; at most one per hold (entries_owner_hold_key);
- a BRIN index on id: refunds and links find an entry by its id alone, and ids grow with
  the table's physical order, so a few pages per lookup at almost no cost per write.

holds keeps each reservation: OPEN until captured or released (ended_on set then), or marked
'expired' by the first write that finds it past expires_at. balances gains held (the
credits of its OPEN holds), held_until (the soonest of their expires_at: while it is ahead,
held is exact) and version (grows with every write of the owner; the live feed orders by
it). balances_held_within_balance (balance >= held) is "available never below 0", enforced by
PostgreSQL for every writer. A hold's ids come from a sequence drawn under the owner's
balance lock, so within an owner they grow in the order holds were reserved.

"""

from alembic import op

from graphql_ledger.storage.functions import install_functions

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE entries
            ADD COLUMN quantity integer CHECK (quantity BETWEEN 2 AND 1000000),
            ADD COLUMN kind text CHECK (kind IN ('capture', 'refund', 'expiry')),
            ADD COLUMN metadata jsonb CHECK (jsonb_typeof(metadata) = 'object'),
            ADD COLUMN refund_of bigint,
            ADD COLUMN hold_id bigint,
            ADD CONSTRAINT entries_refund_of_refunds
                CHECK ((coalesce(kind, '') = 'refund') = (refund_of IS NOT NULL)),
            ADD CONSTRAINT entries_hold_of_captures
                CHECK ((coalesce(kind, '') = 'capture') = (hold_id IS NOT NULL))
        """
    )
    op.execute(
        "CREATE UNIQUE INDEX entries_owner_refund_key ON entries (owner_id, refund_of)"
        " WHERE refund_of IS NOT NULL"
    )
    op.execute(
        "CREATE UNIQUE INDEX entries_owner_hold_key ON entries (owner_id, hold_id)"
        " WHERE hold_id IS NOT NULL"
    )
    op.execute("CREATE INDEX entries_id ON entries USING brin (id)")
    op.execute(
        "CREATE INDEX entries_metadata ON entries USING gin (metadata jsonb_path_ops)"
        " WHERE metadata IS NOT NULL"
    )
    op.execute(
        """
        CREATE TABLE holds (
            owner_id   text        NOT NULL CHECK (ledger_is_identifier(owner_id)),
            id         bigint      GENERATED ALWAYS AS IDENTITY,
            operation  text        NOT NULL,
            quantity   integer     NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
            amount     integer     NOT NULL CHECK (amount < 0),
            nonce      text        NOT NULL CHECK (ledger_is_identifier(nonce)),
            metadata   jsonb       CHECK (jsonb_typeof(metadata) = 'object'),
            created_on timestamptz NOT NULL,
            expires_at timestamptz NOT NULL CHECK (expires_at > created_on),
            status     text        NOT NULL DEFAULT 'open'
                                   CHECK (status IN ('open', 'captured', 'released', 'expired')),
            ended_on   timestamptz,
            capture_id bigint,
            PRIMARY KEY (owner_id, id),
            CONSTRAINT holds_owner_nonce_key UNIQUE (owner_id, nonce),
            CONSTRAINT holds_ended_unless_open CHECK ((status = 'open') = (ended_on IS NULL)),
            CONSTRAINT holds_capture_of_captured
                CHECK ((status = 'captured') = (capture_id IS NOT NULL))
        )
        """
    )
    op.execute("CREATE INDEX holds_id ON holds (id)")
    # The open holds of an owner, which settling, a read past held_until and the OPEN
    # page walk; captured and released ones stay out of it.
    op.execute("CREATE INDEX holds_open ON holds (owner_id, expires_at) WHERE status = 'open'")
    install_functions("refuse_hold_change")
    op.execute(
        """
        CREATE TRIGGER holds_end_once
            BEFORE UPDATE ON holds FOR EACH ROW WHEN (OLD.status <> 'open')
            EXECUTE FUNCTION refuse_hold_change()
        """
    )
    op.execute(
        """
        CREATE TRIGGER holds_are_kept
            BEFORE DELETE OR TRUNCATE ON holds FOR EACH STATEMENT
            EXECUTE FUNCTION refuse_hold_change()
        """
    )
    op.execute(
        """
        ALTER TABLE balances
            ADD COLUMN held integer NOT NULL DEFAULT 0 CHECK (held >= 0),
            ADD COLUMN held_until timestamptz,
            ADD COLUMN version bigint NOT NULL DEFAULT 0,
            ADD CONSTRAINT balances_held_within_balance CHECK (balance >= held)
        """
    )

    # Which sources the functions installed last came from (graphql_ledger/storage/
    # functions.py): `migrate` replaces them only when their sources changed.
    op.execute("CREATE TABLE ledger_installed_functions (digest text NOT NULL)")


def downgrade() -> None:
    raise NotImplementedError("0007 follows 0003, which is not reversible")
