-- The credits the owner's OPEN holds reserve at p_at, summed from the holds. Reads and writes
-- need it only once a hold may have expired: while balances.held_until is ahead,
-- balances.held is exact (`CASE WHEN b.held = 0 OR b.held_until > at THEN b.held ELSE
-- ledger_held(...) END`), so an expired hold stops counting at its expires_at with no job
-- having run.
CREATE FUNCTION ledger_held(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(-h.amount), 0)::integer FROM holds h
     WHERE h.owner_id = p_owner_id AND h.status = 'open' AND h.expires_at > p_at
$$
