-- How many of the owner's available credits expire after p_at and at most p_seconds later.
CREATE FUNCTION ledger_expiring_within(p_owner_id text, p_at timestamptz, p_seconds integer)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(g.remaining), 0)::integer
      FROM ledger_grants(p_owner_id, p_at, p_expiring_only => true) g
     WHERE g.expires_at <= p_at + make_interval(secs => p_seconds)
$$
