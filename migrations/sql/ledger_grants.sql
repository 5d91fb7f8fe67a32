-- The owner's credits left at p_at (now, for reads), by the entry that granted them:
-- each unexpired grant's remaining (with what holds past their expires_at gave back),
-- and how the credits that never expire spread over the entries that added them. Those
-- are spent oldest first, so they sit in the newest such entries: walked newest first,
-- each keeps up to its amount of what is left, until nothing is. Entries refunded, and
-- REFUND entries (their credits went back where they came from), keep none. p_expiring_only
-- leaves out the credits that never expire.
CREATE FUNCTION ledger_grants(
    p_owner_id text, p_at timestamptz, p_expiring_only boolean DEFAULT false
)
RETURNS TABLE (entry_id bigint, created_on timestamptz, expires_at timestamptz,
               remaining integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_owner record;
    v_entry record;
    v_pool bigint;
BEGIN
    SELECT b.balance, CASE WHEN b.held = 0 OR b.held_until > p_at THEN b.held
                           ELSE ledger_held(b.owner_id, p_at) END AS held
      INTO v_owner FROM balances b WHERE b.owner_id = p_owner_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_pool := v_owner.balance - v_owner.held;
    FOR v_entry IN
        WITH back AS (  -- what holds past their expires_at give back to grants
            SELECT u.grant_id, sum(u.credits)::integer AS credits
              FROM holds h
              JOIN grant_uses u ON u.owner_id = h.owner_id AND u.hold_id = h.id
             WHERE h.owner_id = p_owner_id AND h.status = 'open' AND h.expires_at <= p_at
             GROUP BY u.grant_id)
        SELECT g.entry_id, g.created_on, g.expires_at,
               g.remaining + coalesce(b.credits, 0) AS credits_left
          FROM grants g LEFT JOIN back b ON b.grant_id = g.entry_id
         WHERE g.owner_id = p_owner_id AND g.remaining > 0
         UNION ALL
        SELECT g.entry_id, g.created_on, g.expires_at, b.credits
          FROM back b JOIN grants g ON g.owner_id = p_owner_id AND g.entry_id = b.grant_id
         WHERE g.remaining = 0
    LOOP
        v_pool := v_pool - v_entry.credits_left;  -- lapsed or not, it is no credit that never expires
        IF v_entry.credits_left > 0 AND v_entry.expires_at > p_at THEN
            entry_id := v_entry.entry_id;
            created_on := v_entry.created_on;
            expires_at := v_entry.expires_at;
            remaining := v_entry.credits_left;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF p_expiring_only THEN
        RETURN;
    END IF;
    FOR v_entry IN
        SELECT e.id, e.created_on, e.amount FROM entries e
         WHERE e.owner_id = p_owner_id AND e.kind IS NULL AND e.amount > 0
           AND e.expires_at IS NULL
           AND NOT EXISTS (SELECT FROM entries r
                            WHERE r.owner_id = e.owner_id AND r.refund_of = e.id)
         ORDER BY e.created_on DESC, e.id DESC
    LOOP
        EXIT WHEN v_pool <= 0;
        entry_id := v_entry.id;
        created_on := v_entry.created_on;
        expires_at := NULL;
        remaining := least(v_entry.amount, v_pool);
        v_pool := v_pool - remaining;
        RETURN NEXT;
    END LOOP;
END
$$
