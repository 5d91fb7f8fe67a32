-- The owner's credits that have lapsed at p_at (not before its newest write) and are not
-- booked out yet: what grants whose expires_at has passed have left, and what OPEN holds
-- past their own expires_at hold of such grants (a hold's credits go back to their grants
-- when it ends). Reads subtract it from what is available once balances.expiring_until
-- has passed, so an expired credit stops counting at that instant, booked or not.
CREATE FUNCTION ledger_lapsed(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT ((SELECT coalesce(sum(g.remaining), 0) FROM grants g
              WHERE g.owner_id = p_owner_id AND g.remaining > 0 AND g.expires_at <= p_at)
          + (SELECT coalesce(sum(u.credits), 0)
               FROM holds h
               JOIN grant_uses u ON u.owner_id = h.owner_id AND u.hold_id = h.id
              WHERE h.owner_id = p_owner_id AND h.status = 'open' AND h.expires_at <= p_at
                AND u.expires_at <= p_at))::integer);
END
$$
