-- An entry as the GraphQL API shows a LedgerEntry (its field names and values), for events.
CREATE FUNCTION ledger_entry_event(p_entry entries) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', p_entry.id::text, 'ownerId', p_entry.owner_id, 'operation', p_entry.operation,
        'amount', p_entry.amount, 'balanceAfter', p_entry.balance_after,
        'nonce', coalesce(p_entry.nonce, (SELECT g.nonce FROM grants g
                                          WHERE g.owner_id = p_entry.owner_id
                                            AND g.entry_id = p_entry.expiry_of)),
        'createdOn', ledger_iso(p_entry.created_on),
        'quantity', coalesce(p_entry.quantity, 1),
        'kind', upper(coalesce(p_entry.kind, 'operation')), 'metadata', p_entry.metadata,
        'refundOf', CASE WHEN p_entry.refund_of IS NOT NULL
                         THEN jsonb_build_object('id', p_entry.refund_of::text) END,
        'expiresAt', ledger_iso(p_entry.expires_at),
        'expiryOf', CASE WHEN p_entry.expiry_of IS NOT NULL
                         THEN jsonb_build_object('id', p_entry.expiry_of::text) END)
$$
