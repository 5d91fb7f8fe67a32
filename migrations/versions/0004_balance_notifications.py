"""Balance notifications: create_entry() announces each entry it writes on the channel
ledger_balances, with the owner's new balance, so every server process can push it to
its subscribers. NOTIFY is transactional: a refused or rolled-back entry announces
nothing, and listeners receive committed ones in commit order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_WITH_NOTIFY = """
        CREATE OR REPLACE FUNCTION create_entry(
            p_owner_id text, p_operation text, p_amount integer, p_nonce text,
            p_limit text DEFAULT NULL,
            OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
            OUT entry_amount integer, OUT entry_balance_after integer,
            OUT entry_created_on timestamptz, OUT current_balance integer,
            OUT retry_after timestamptz
        ) LANGUAGE plpgsql AS $$
        DECLARE
            v_limit_key text;
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

            IF p_limit IS NOT NULL THEN
                v_limit_key := CASE p_limit
                    WHEN 'once' THEN 'once'
                    WHEN 'utc_day' THEN to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                END;
                IF v_limit_key IS NULL THEN
                    RAISE EXCEPTION 'unknown operation limit %', p_limit
                        USING ERRCODE = 'invalid_parameter_value';
                END IF;
                PERFORM FROM entries e
                  WHERE e.owner_id = p_owner_id AND e.operation = p_operation
                    AND e.limit_key = v_limit_key;
                IF FOUND THEN
                    outcome := 'limit_reached';
                    IF p_limit = 'utc_day' THEN
                        retry_after := (date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')
                                        + interval '1 day') AT TIME ZONE 'UTC';
                    END IF;
                    RETURN;
                END IF;
            END IF;

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

            -- The period is that of the entry's own created_on, taken under the lock.
            IF p_limit = 'utc_day' THEN
                v_limit_key := to_char(entry_created_on AT TIME ZONE 'UTC', 'YYYY-MM-DD');
            END IF;
            INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,
                                 limit_key)
            VALUES (p_owner_id, p_operation, p_amount, current_balance, p_nonce,
                    entry_created_on, v_limit_key)
            RETURNING id INTO entry_id;
            -- Delivered to listeners only if, and when, this transaction commits, in
            -- commit order.
            PERFORM pg_notify('ledger_balances', json_build_object(
                'owner_id', p_owner_id, 'balance', current_balance, 'entry_id', entry_id,
                'created_on_us', (extract(epoch FROM entry_created_on) * 1000000)::bigint
            )::text);
            outcome := 'created';
            entry_operation := p_operation;
            entry_amount := p_amount;
            entry_balance_after := current_balance;
        END
        $$
"""


def upgrade() -> None:
    op.execute(_WITH_NOTIFY)


def downgrade() -> None:
    raise NotImplementedError("0004 follows 0003, which is not reversible")
