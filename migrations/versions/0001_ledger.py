"""The ledger: append-only entries, a stored balance per owner, and create_entry().

Every rule that must hold for every writer lives here, in the database: the balance row is
the per-owner lock that orders writes, CHECK constraints forbid negative balances, the
(owner_id, nonce) key makes writes idempotent, and a trigger refuses UPDATE, DELETE and
TRUNCATE on entries. Every key starts with owner_id so the tables can be distributed by
owner (Citus) unchanged.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


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
    op.execute(
        """
        CREATE FUNCTION refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'ledger entries are append-only: % is refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER entries_are_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON entries
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_entry_change()
        """
    )
    # One round trip per write. The outcome is 'created', 'replayed', 'nonce_conflict' or
    # 'insufficient_credits'. When a copy of the same request commits between the first
    # nonce lookup and the balance lock, the call raises unique_violation on
    # entries_owner_nonce_key (from the INSERT, or explicitly on the refusal path); the
    # whole call rolls back and the caller repeats it, which answers from the committed
    # entry.
    op.execute(
        """
        CREATE FUNCTION create_entry(
            p_owner_id text, p_operation text, p_amount integer, p_nonce text,
            OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
            OUT entry_amount integer, OUT entry_balance_after integer,
            OUT entry_created_on timestamptz, OUT current_balance integer
        ) LANGUAGE plpgsql AS $$
        BEGIN
            SELECT CASE WHEN e.operation = p_operation THEN 'replayed' ELSE 'nonce_conflict' END,
                   e.id, e.operation, e.amount, e.balance_after, e.created_on
              INTO outcome, entry_id, entry_operation, entry_amount, entry_balance_after,
                   entry_created_on
              FROM entries e
             WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce;
            IF FOUND THEN
                RETURN;
            END IF;

            -- Lock the owner's balance row and move it; created_on never runs backwards
            -- within an owner, even if the clock does.
            IF p_amount >= 0 THEN
                INSERT INTO balances AS b (owner_id, balance, last_updated)
                VALUES (p_owner_id, p_amount, clock_timestamp())
                ON CONFLICT (owner_id) DO UPDATE
                    SET balance = b.balance + excluded.balance,
                        last_updated = greatest(clock_timestamp(), b.last_updated)
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
            ELSE
                UPDATE balances AS b
                   SET balance = b.balance + p_amount,
                       last_updated = greatest(clock_timestamp(), b.last_updated)
                 WHERE b.owner_id = p_owner_id AND b.balance + p_amount >= 0
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
                IF NOT FOUND THEN
                    -- A copy of this request that committed while we waited for the
                    -- lock is the answer, not a refusal: have the caller repeat the call.
                    PERFORM FROM entries e WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce;
                    IF FOUND THEN
                        RAISE unique_violation USING CONSTRAINT = 'entries_owner_nonce_key',
                            MESSAGE = 'a copy of this entry committed concurrently';
                    END IF;
                    outcome := 'insufficient_credits';
                    SELECT coalesce(max(b.balance), 0) INTO current_balance
                      FROM balances b WHERE b.owner_id = p_owner_id;
                    RETURN;
                END IF;
            END IF;

            INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on)
            VALUES (p_owner_id, p_operation, p_amount, current_balance, p_nonce,
                    entry_created_on)
            RETURNING id INTO entry_id;
            outcome := 'created';
            entry_operation := p_operation;
            entry_amount := p_amount;
            entry_balance_after := current_balance;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION create_entry(text, text, integer, text)")
    op.execute("DROP TABLE entries")
    op.execute("DROP FUNCTION refuse_entry_change()")
    op.execute("DROP TABLE balances")
