-- The owner's entry written with this nonce, if any: a replay answers with it.
CREATE FUNCTION ledger_entry_by_nonce(p_owner_id text, p_nonce text)
RETURNS SETOF entries LANGUAGE sql STABLE AS $$
    SELECT * FROM entries e WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce
$$
