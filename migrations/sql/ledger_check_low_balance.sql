-- Under the owner's balance lock, after a write: fires balance.low once when what is
-- available is below the owner's threshold (its own, else the app's) and the alert was armed
-- (available was at or above it since the last one), and re-arms it once available is at or
-- above it again. An owner never seen before is armed only by being at or above: a first
-- balance below the threshold crossed nothing. Racing spends take the lock in turn, so only
-- the first that crosses finds the alert armed.
CREATE FUNCTION ledger_check_low_balance(
    p_owner_id text, p_balance integer, p_held integer, p_app_below integer
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_alert balance_alerts;
    v_below integer;
    v_available integer := p_balance - p_held;
BEGIN
    SELECT * INTO v_alert FROM balance_alerts a WHERE a.owner_id = p_owner_id;
    v_below := CASE WHEN v_alert.owner_id IS NOT NULL AND v_alert.below IS NOT NULL
                    THEN v_alert.below ELSE p_app_below END;
    IF v_below IS NULL THEN
        RETURN;
    ELSIF v_available >= v_below THEN
        IF v_alert.armed IS NOT TRUE THEN
            INSERT INTO balance_alerts AS a (owner_id, armed) VALUES (p_owner_id, true)
            ON CONFLICT (owner_id) DO UPDATE SET armed = true;
        END IF;
    ELSIF v_alert.armed THEN
        UPDATE balance_alerts a SET armed = false WHERE a.owner_id = p_owner_id;
        PERFORM ledger_record_event(p_owner_id, 'balance.low', clock_timestamp(),
            jsonb_build_object('ownerId', p_owner_id, 'balance', p_balance, 'held', p_held,
                               'available', v_available, 'below', v_below));
    ELSIF v_alert.owner_id IS NULL THEN
        INSERT INTO balance_alerts (owner_id, armed) VALUES (p_owner_id, false)
        ON CONFLICT (owner_id) DO NOTHING;
    END IF;
END
$$
