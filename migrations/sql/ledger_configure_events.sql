-- Called by each serving process at start with its configuration: whether the app has a
-- webhook (without one the write functions write no event) and the app's low-balance
-- threshold. The serving role writes no table itself: this is its only way to change the
-- settings (SECURITY DEFINER), and every process of an app is configured alike.
CREATE FUNCTION ledger_configure_events(p_webhooks boolean, p_low_balance integer)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    UPDATE ledger_settings s SET webhooks = p_webhooks, low_balance = p_low_balance
     WHERE s.webhooks IS DISTINCT FROM p_webhooks
        OR s.low_balance IS DISTINCT FROM p_low_balance
$$
