-- Under the owner's balance lock: raises unique_violation when a write that committed while
-- this one waited for the lock took the nonce (as an entry or a hold), so that the caller
-- repeats the call and answers from what committed, never with a refusal.
CREATE FUNCTION ledger_raise_if_nonce_taken(p_owner_id text, p_nonce text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM entries e WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce) THEN
        RAISE unique_violation USING CONSTRAINT = 'entries_owner_nonce_key',
            MESSAGE = 'a write with this nonce committed concurrently';
    END IF;
    IF EXISTS (SELECT FROM holds h WHERE h.owner_id = p_owner_id AND h.nonce = p_nonce) THEN
        RAISE unique_violation USING CONSTRAINT = 'holds_owner_nonce_key',
            MESSAGE = 'a hold with this nonce committed concurrently';
    END IF;
END
$$
