-- The credits the owner's OPEN holds reserve at p_at, from its balance row's held and
-- held_until: those are exact while no open hold has expired (held_until ahead); past that,
-- the holds themselves are summed. Reads use it, so an expired hold stops counting at its
-- expires_at with no job having run.
CREATE FUNCTION ledger_held(
    p_owner_id text, p_held integer, p_held_until timestamptz, p_at timestamptz
) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_held = 0 OR p_held_until > p_at THEN p_held
           ELSE (SELECT coalesce(sum(-h.amount), 0)::integer FROM holds h
                  WHERE h.owner_id = p_owner_id AND h.status = 'open'
                    AND h.expires_at > p_at)
           END
$$
