-- A hold as the GraphQL API shows a Hold (its field names and values), for events.
CREATE FUNCTION ledger_hold_event(p_hold holds) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p_hold.id::text, 'ownerId', p_hold.owner_id, 'operation', p_hold.operation,
        'quantity', p_hold.quantity, 'amount', p_hold.amount,
        'status', upper(p_hold.status), 'nonce', p_hold.nonce, 'metadata', p_hold.metadata,
        'createdOn', ledger_iso(p_hold.created_on), 'expiresAt', ledger_iso(p_hold.expires_at),
        'capture', CASE WHEN p_hold.capture_id IS NOT NULL
                        THEN jsonb_build_object('id', p_hold.capture_id::text) END)
$$
