-- What had lapsed, unbooked, at a past instant p_at (a balance `at`): for each grant that
-- existed and had expired by then, its amount less what entries had taken by then (spends,
-- captures, refunds: grant_uses by moved_on), what EXPIRY entries had booked out by then
-- and what holds open at that instant held of it.
CREATE FUNCTION ledger_lapsed_at(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(
               g.amount
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
                   AND (h.ended_on IS NULL OR h.ended_on > p_at))), 0)::integer
      FROM grants g
     WHERE g.owner_id = p_owner_id AND g.created_on <= p_at AND g.expires_at <= p_at
$$
