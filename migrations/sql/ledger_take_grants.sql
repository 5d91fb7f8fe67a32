-- Under the owner's balance lock, once balances.expiring has been lowered by p_credits:
-- takes p_credits from the owner's unexpired grants, soonest-expiring first (p_first_grant,
-- a refunded grant, first of all), for the spend entry p_entry_id or the hold p_hold_id,
-- recording each grant's share in grant_uses, and keeps balances.expiring_until.
CREATE FUNCTION ledger_take_grants(
    p_owner_id text, p_credits integer, p_at timestamptz, p_entry_id bigint,
    p_hold_id bigint, p_first_grant bigint DEFAULT NULL
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_grant record;
    v_left integer := p_credits;
    v_take integer;
BEGIN
    FOR v_grant IN
        SELECT g.entry_id, g.remaining, g.expires_at FROM grants g
         WHERE g.owner_id = p_owner_id AND g.remaining > 0 AND g.expires_at > p_at
         ORDER BY g.entry_id IS NOT DISTINCT FROM p_first_grant DESC, g.expires_at, g.entry_id
           FOR UPDATE
    LOOP
        EXIT WHEN v_left = 0;
        v_take := least(v_left, v_grant.remaining);
        UPDATE grants g SET remaining = g.remaining - v_take
         WHERE g.owner_id = p_owner_id AND g.entry_id = v_grant.entry_id;
        INSERT INTO grant_uses (owner_id, grant_id, entry_id, hold_id, credits, taken_on,
                                moved_on, expires_at)
        VALUES (p_owner_id, v_grant.entry_id, p_entry_id, p_hold_id, v_take, p_at, p_at,
                v_grant.expires_at);
        v_left := v_left - v_take;
    END LOOP;
    IF v_left > 0 THEN
        RAISE EXCEPTION 'the grants of % lack % credits', p_owner_id, v_left;
    END IF;
    UPDATE balances b SET expiring_until = ledger_next_expiry(p_owner_id)
     WHERE b.owner_id = p_owner_id;
END
$$
