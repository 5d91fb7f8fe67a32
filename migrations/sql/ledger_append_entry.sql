-- Appends an entry under the owner's balance lock and answers it (the caller announces
-- it). A copy that committed first makes the INSERT raise unique_violation on
-- entries_owner_nonce_key (or entries_owner_limit_key, entries_owner_refund_key,
-- entries_owner_hold_key), which the caller repeats. One unit and the kind OPERATION are
-- stored as NULLs: the common entry pays nothing for them. An expiring credit
-- (p_expires_at) also gets its grants row, with all its credits remaining; p_given says a
-- service token chose expires_at.
CREATE FUNCTION ledger_append_entry(
    p_owner_id text, p_operation text, p_amount integer, p_balance_after integer,
    p_nonce text, p_created_on timestamptz, p_limit_key text,
    p_quantity integer DEFAULT 1, p_kind text DEFAULT NULL, p_metadata jsonb DEFAULT NULL,
    p_refund_of bigint DEFAULT NULL, p_hold_id bigint DEFAULT NULL,
    p_expires_at timestamptz DEFAULT NULL, p_expiry_of bigint DEFAULT NULL,
    p_given boolean DEFAULT false
) RETURNS entries LANGUAGE plpgsql AS $$
DECLARE
    v_entry entries;
BEGIN
    INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,
                         limit_key, quantity, kind, metadata, refund_of, hold_id, expires_at,
                         expiry_of)
    VALUES (p_owner_id, p_operation, p_amount, p_balance_after, p_nonce, p_created_on,
            p_limit_key, nullif(p_quantity, 1), p_kind, p_metadata, p_refund_of, p_hold_id,
            p_expires_at, p_expiry_of)
    RETURNING * INTO v_entry;
    IF p_expires_at IS NOT NULL THEN
        INSERT INTO grants (owner_id, entry_id, operation, nonce, amount, created_on,
                            expires_at, given, remaining)
        VALUES (p_owner_id, v_entry.id, p_operation, p_nonce, p_amount, p_created_on,
                p_expires_at, p_given, p_amount);
    END IF;
    IF ledger_events_on() THEN
        PERFORM ledger_record_event(p_owner_id, 'entry.created', p_created_on,
                                    ledger_entry_event(v_entry));
    END IF;
    RETURN v_entry;
END
$$
