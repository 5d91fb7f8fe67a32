"""Operation rules in the database: each operation's amount and limit, with the instant
they took effect, and create_entry() reading them instead of trusting its caller.

operation_rules keeps every (amount, limit) an operation has had, so an audit can check
each entry against the amount in force when it was written. Apps register their
operations' rules when they start (and `graphql-ledger migrate` does); a change of amount
becomes a new row. The first rule of an operation applies from '-infinity': entries
written before rules were recorded were written with it.

create_entry(owner, operation, nonce) now takes the amount and the limit from the rules in
force, so every writer, whichever version of the app it runs, applies the same ones, and a
writer cannot pass another amount or skip a limit. A write holds the rules' advisory lock
(0x72756C6573, "rules") shared and a registration holds it exclusively, so a rule change
takes effect between writes: no entry is dated after a rule it was not written with. It
answers `required` (the credits an overdraft lacked) for InsufficientCredits.

The previous signature, create_entry(owner, operation, amount, nonce, limit), stays for
the processes of the previous release while a rollout replaces them: it calls the new one,
so their amount and limit are ignored and the rules apply.

operation_rules has no owner_id: it is a small catalogue read by every write, which Citus
would keep as a reference table (copied to every node).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


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
    op.execute("DROP FUNCTION create_entry(text, text, integer, text, text)")
    op.execute(
        """
        CREATE FUNCTION create_entry(
            p_owner_id text, p_operation text, p_nonce text,
            OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
            OUT entry_amount integer, OUT entry_balance_after integer,
            OUT entry_created_on timestamptz, OUT current_balance integer,
            OUT retry_after timestamptz, OUT required integer
        ) LANGUAGE plpgsql AS $$
        DECLARE
            v_amount integer;
            v_limit text;
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

            -- Rule changes wait for writes in flight and writes wait for a rule change
            -- (the repository's register_rules holds this lock exclusively): so every
            -- entry carries the rule in force at its created_on, which verify checks.
            PERFORM pg_advisory_xact_lock_shared(491596309875);
            SELECT r.amount, r.limit_kind INTO v_amount, v_limit
              FROM operation_rules r
             WHERE r.operation = p_operation AND r.valid_from <= clock_timestamp()
             ORDER BY r.valid_from DESC
             LIMIT 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'operation % has no rules: start the app or run migrate',
                    p_operation USING ERRCODE = 'invalid_parameter_value';
            END IF;

            IF v_limit IS NOT NULL THEN
                v_limit_key := CASE v_limit
                    WHEN 'once' THEN 'once'
                    ELSE to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                END;
                PERFORM FROM entries e
                  WHERE e.owner_id = p_owner_id AND e.operation = p_operation
                    AND e.limit_key = v_limit_key;
                IF FOUND THEN
                    outcome := 'limit_reached';
                    IF v_limit = 'utc_day' THEN
                        retry_after := (date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')
                                        + interval '1 day') AT TIME ZONE 'UTC';
                    END IF;
                    RETURN;
                END IF;
            END IF;

            IF v_amount >= 0 THEN
                INSERT INTO balances AS b (owner_id, balance, last_updated)
                VALUES (p_owner_id, v_amount, clock_timestamp())
                ON CONFLICT (owner_id) DO UPDATE
                    SET balance = b.balance + excluded.balance,
                        last_updated = greatest(clock_timestamp(), b.last_updated)
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
            ELSE
                UPDATE balances AS b
                   SET balance = b.balance + v_amount,
                       last_updated = greatest(clock_timestamp(), b.last_updated)
                 WHERE b.owner_id = p_owner_id AND b.balance + v_amount >= 0
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
                IF NOT FOUND THEN
                    PERFORM FROM entries e WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce;
                    IF FOUND THEN
                        RAISE unique_violation USING CONSTRAINT = 'entries_owner_nonce_key',
                            MESSAGE = 'a copy of this entry committed concurrently';
                    END IF;
                    outcome := 'insufficient_credits';
                    required := -v_amount;
                    SELECT coalesce(max(b.balance), 0) INTO current_balance
                      FROM balances b WHERE b.owner_id = p_owner_id;
                    RETURN;
                END IF;
            END IF;

            -- The period is that of the entry's own created_on, taken under the lock.
            IF v_limit = 'utc_day' THEN
                v_limit_key := to_char(entry_created_on AT TIME ZONE 'UTC', 'YYYY-MM-DD');
            END IF;
            INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,
                                 limit_key)
            VALUES (p_owner_id, p_operation, v_amount, current_balance, p_nonce,
                    entry_created_on, v_limit_key)
            RETURNING id INTO entry_id;
            PERFORM pg_notify('ledger_balances', json_build_object(
                'owner_id', p_owner_id, 'balance', current_balance, 'entry_id', entry_id,
                'created_on_us', (extract(epoch FROM entry_created_on) * 1000000)::bigint
            )::text);
            outcome := 'created';
            entry_operation := p_operation;
            entry_amount := v_amount;
            entry_balance_after := current_balance;
        END
        $$
        """
    )

    # The old signature stays for processes of the previous release while a rollout
    # replaces them: their amount and limit arguments are ignored, the rules apply.
    op.execute(
        """
        CREATE FUNCTION create_entry(
            p_owner_id text, p_operation text, p_amount integer, p_nonce text,
            p_limit text DEFAULT NULL,
            OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
            OUT entry_amount integer, OUT entry_balance_after integer,
            OUT entry_created_on timestamptz, OUT current_balance integer,
            OUT retry_after timestamptz
        ) LANGUAGE sql AS $$
            SELECT c.outcome, c.entry_id, c.entry_operation, c.entry_amount,
                   c.entry_balance_after, c.entry_created_on, c.current_balance, c.retry_after
              FROM create_entry(p_owner_id, p_operation, p_nonce) c
        $$
        """
    )


def downgrade() -> None:
    raise NotImplementedError("0005 follows 0003, which is not reversible")
