-- Sets the owner's own low-balance threshold (NULL: removes it, the app's applies again),
-- under the owner's balance lock, and arms the alert by what is available now: it fires at
-- the next write that takes available below the threshold. Answers the threshold in force
-- for the owner and what is available. SECURITY DEFINER; only backend services call it.
CREATE FUNCTION set_balance_alert(
    p_owner_id text, p_below integer,
    OUT below integer, OUT app_below integer, OUT available integer
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_owner record;
BEGIN
    SELECT * INTO v_owner FROM ledger_available(p_owner_id);
    available := coalesce(v_owner.balance - v_owner.held, 0);
    SELECT s.low_balance INTO app_below FROM ledger_settings s;
    below := coalesce(p_below, app_below);
    INSERT INTO balance_alerts AS a (owner_id, below, armed)
    VALUES (p_owner_id, p_below, available >= below)
    ON CONFLICT (owner_id) DO UPDATE SET below = excluded.below, armed = excluded.armed;
    IF p_below IS NOT NULL THEN
        UPDATE ledger_settings s SET owner_alerts = true WHERE NOT s.owner_alerts;
    END IF;
END
$$
