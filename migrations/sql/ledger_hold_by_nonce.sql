-- The owner's hold reserved with this nonce, if any: one nonce space per owner, shared by
-- entries and holds.
CREATE FUNCTION ledger_hold_by_nonce(p_owner_id text, p_nonce text)
RETURNS SETOF holds LANGUAGE sql STABLE AS $$
    SELECT * FROM holds h WHERE h.owner_id = p_owner_id AND h.nonce = p_nonce
$$
