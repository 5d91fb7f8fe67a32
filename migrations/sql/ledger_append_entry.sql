-- Appends the entry, under the owner's balance lock, and announces it on ledger_balances:
-- NOTIFY is delivered to listeners only if, and when, the transaction commits, in commit
-- order. A copy that committed first makes the INSERT raise unique_violation on
-- entries_owner_nonce_key (or entries_owner_limit_key), which the caller repeats.
CREATE FUNCTION ledger_append_entry(
    p_owner_id text, p_operation text, p_amount integer, p_balance_after integer,
    p_nonce text, p_created_on timestamptz, p_limit_key text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,
                         limit_key)
    VALUES (p_owner_id, p_operation, p_amount, p_balance_after, p_nonce, p_created_on,
            p_limit_key)
    RETURNING id INTO v_id;
    PERFORM pg_notify('ledger_balances', json_build_object(
        'owner_id', p_owner_id, 'balance', p_balance_after, 'entry_id', v_id,
        'created_on_us', (extract(epoch FROM p_created_on) * 1000000)::bigint
    )::text);
    RETURN v_id;
END
$$
