-- What the owner's unexpired grants have left to spend at p_at, under the balance lock: a
-- spend takes up to that much from grants (soonest-expiring first) and the rest from
-- credits that never expire.
CREATE FUNCTION ledger_grants_left(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(g.remaining), 0)::integer FROM grants g
     WHERE g.owner_id = p_owner_id AND g.remaining > 0 AND g.expires_at > p_at);
END
$$
