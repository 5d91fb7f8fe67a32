-- Under the owner's balance lock, after a write changed what the owner's grants hold:
-- keeps balances.expiring_until, and books at once what has lapsed (credits a refund or a
-- hold's end gave back to a grant that had expired).
CREATE FUNCTION ledger_track_grants(p_owner_id text, p_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_next timestamptz := ledger_next_expiry(p_owner_id);
BEGIN
    IF v_next <= p_at THEN
        PERFORM ledger_book_expiries(p_owner_id, p_at);
    ELSE
        UPDATE balances b SET expiring_until = v_next
         WHERE b.owner_id = p_owner_id AND b.expiring_until IS DISTINCT FROM v_next;
    END IF;
END
$$
