-- The next instant a credit of the owner lapses (NULL: none will): a grant with credits
-- left expires, or an OPEN hold holding credits of a grant ends when both its own and the
-- grant's expires_at have passed. balances.expiring_until keeps it: while it is ahead, no
-- read needs more than the balance row, and no write has an expiry to book first.
CREATE FUNCTION ledger_next_expiry(p_owner_id text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT least(
        (SELECT min(g.expires_at) FROM grants g
          WHERE g.owner_id = p_owner_id AND g.remaining > 0),
        (SELECT min(greatest(u.expires_at, h.expires_at))
           FROM holds h
           JOIN grant_uses u ON u.owner_id = h.owner_id AND u.hold_id = h.id
          WHERE h.owner_id = p_owner_id AND h.status = 'open')));
END
$$
