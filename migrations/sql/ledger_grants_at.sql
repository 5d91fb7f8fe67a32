-- What each of the owner's grants had left at a past instant p_at (a balance `at`), for
-- the grants that existed then: its amount less what entries had taken by then (spends,
-- captures and refunds: grant_uses by moved_on), what EXPIRY entries had booked out by
-- then and what holds open at that instant held of it.
CREATE FUNCTION ledger_grants_at(p_owner_id text, p_at timestamptz)
RETURNS TABLE (entry_id bigint, expires_at timestamptz, remaining integer)
LANGUAGE sql STABLE AS $$
    SELECT g.entry_id, g.expires_at,
           (g.amount
            - (SELECT coalesce(sum(u.credits), 0) FROM grant_uses u
                WHERE u.owner_id = g.owner_id AND u.grant_id = g.entry_id
                  AND u.entry_id IS NOT NULL AND u.moved_on <= p_at)
            - (SELECT coalesce(sum(-x.amount), 0) FROM entries x
                WHERE x.owner_id = g.owner_id AND x.expiry_of = g.entry_id
                  AND x.created_on <= p_at)
            - (SELECT coalesce(sum(u.credits), 0)
                 FROM grant_uses u
                 JOIN holds h ON h.owner_id = u.owner_id AND h.id = u.hold_id
                WHERE u.owner_id = g.owner_id AND u.grant_id = g.entry_id
                  AND h.created_on <= p_at AND h.expires_at > p_at
                  AND (h.ended_on IS NULL OR h.ended_on > p_at)))::integer
      FROM grants g
     WHERE g.owner_id = p_owner_id AND g.created_on <= p_at
$$
