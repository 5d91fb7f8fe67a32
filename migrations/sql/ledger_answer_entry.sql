-- A write's answer with `p_entry` as its entry (an entries row; NULLs for none).
CREATE FUNCTION ledger_answer_entry(p_outcome text, p_entry entries)
RETURNS ledger_entry_answer LANGUAGE sql IMMUTABLE AS $$
    SELECT ROW(p_outcome, p_entry.id, p_entry.owner_id, p_entry.operation, p_entry.amount,
               p_entry.balance_after, p_entry.nonce, p_entry.created_on,
               coalesce(p_entry.quantity, 1), p_entry.kind, p_entry.metadata,
               p_entry.refund_of, NULL, NULL, NULL, p_entry.hold_id, NULL, p_entry.expires_at,
               p_entry.expiry_of)::ledger_entry_answer
$$
