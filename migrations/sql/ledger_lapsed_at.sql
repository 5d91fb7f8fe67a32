-- What had lapsed, unbooked, at a past instant p_at (a balance `at`): what the grants that
-- had expired by then had left then (ledger_grants_at).
CREATE FUNCTION ledger_lapsed_at(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(g.remaining), 0)::integer
      FROM ledger_grants_at(p_owner_id, p_at) g
     WHERE g.expires_at <= p_at
$$
