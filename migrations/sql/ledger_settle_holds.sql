-- Locks the owner's balance row, marks its holds whose expires_at has passed EXPIRED, and
-- sets balances.held to the credits the remaining OPEN holds reserve (held_until: the
-- soonest of their expires_at). Reads never need it: they compute what has expired. Writes
-- call it when the stored held may count an expired hold (held_until has passed), so that
-- balances_held_within_balance (balance >= held) is then exactly "available never below 0".
-- Answers the owner's balance and held after it; NULLs when the owner has no balance row.
CREATE FUNCTION ledger_settle_holds(
    p_owner_id text, OUT balance integer, OUT held integer
) LANGUAGE plpgsql AS $$
DECLARE
    v_held_until timestamptz;
BEGIN
    SELECT b.balance, b.held, b.held_until INTO balance, held, v_held_until
      FROM balances b WHERE b.owner_id = p_owner_id FOR UPDATE;
    IF NOT FOUND OR held = 0 OR v_held_until > clock_timestamp() THEN
        RETURN;  -- nothing held has expired: held is exact
    END IF;
    UPDATE holds h SET status = 'expired', ended_on = h.expires_at
     WHERE h.owner_id = p_owner_id AND h.status = 'open'
       AND h.expires_at <= clock_timestamp();
    UPDATE balances b
       SET held = o.held, held_until = o.held_until
      FROM (SELECT coalesce(sum(-h.amount), 0)::integer AS held,
                   min(h.expires_at) AS held_until
              FROM holds h WHERE h.owner_id = p_owner_id AND h.status = 'open') o
     WHERE b.owner_id = p_owner_id
    RETURNING b.held INTO held;
END
$$
