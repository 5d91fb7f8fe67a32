-- Under the owner's balance lock, for a write that goes ahead: marks the owner's holds whose
-- expires_at has passed by p_at EXPIRED, gives what they took from grants back to those
-- grants, and sets balances.held to the credits the remaining OPEN holds reserve
-- (held_until: the soonest of their expires_at; NULL when none). Reads never need it: they
-- compute what has expired. Writes call it when the stored held may count an expired hold
-- (held_until has passed), so that balances_held_within_balance (balance >= held +
-- expiring) is then exactly "available never below 0".
CREATE FUNCTION ledger_settle_holds(p_owner_id text, p_at timestamptz DEFAULT clock_timestamp())
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_expired bigint[];
    v_back integer;
BEGIN
    IF NOT EXISTS (SELECT FROM balances b WHERE b.owner_id = p_owner_id AND b.held > 0
                                           AND b.held_until <= p_at) THEN
        RETURN;  -- nothing held has expired: held is exact
    END IF;
    WITH expired AS (
        UPDATE holds h SET status = 'expired', ended_on = h.expires_at
         WHERE h.owner_id = p_owner_id AND h.status = 'open' AND h.expires_at <= p_at
        RETURNING h.id)
    SELECT array_agg(expired.id) INTO v_expired FROM expired;
    v_back := ledger_end_hold_uses(p_owner_id, v_expired, p_at);
    UPDATE balances b
       SET held = o.held, held_until = o.held_until, expiring = b.expiring + v_back
      FROM (SELECT coalesce(sum(-h.amount), 0)::integer AS held,
                   min(h.expires_at) AS held_until
              FROM holds h WHERE h.owner_id = p_owner_id AND h.status = 'open') o
     WHERE b.owner_id = p_owner_id;
END
$$
