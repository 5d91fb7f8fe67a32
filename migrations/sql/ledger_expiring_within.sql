-- How many of the owner's available credits expire after p_at and at most p_seconds later:
-- now (p_at NULL) from what the grants have left, or at a past instant from what they had
-- left then (ledger_grants_at).
CREATE FUNCTION ledger_expiring_within(p_owner_id text, p_at timestamptz, p_seconds integer)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_at IS NULL THEN
        RETURN (SELECT coalesce(sum(g.remaining), 0)::integer
                  FROM ledger_grants(p_owner_id, now(), p_expiring_only => true) g
                 WHERE g.expires_at <= now() + make_interval(secs => p_seconds));
    END IF;
    RETURN (SELECT coalesce(sum(g.remaining), 0)::integer
              FROM ledger_grants_at(p_owner_id, p_at) g
             WHERE g.expires_at > p_at
               AND g.expires_at <= p_at + make_interval(secs => p_seconds));
END
$$
