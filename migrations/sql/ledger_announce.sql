-- Announces the owner's balance and held on ledger_balances after a write: NOTIFY is
-- delivered to listeners only if, and when, the transaction commits, in commit order.
-- `version` grows with every write of the owner, so a listener can drop what it has seen.
-- With a webhook configured and a low-balance threshold in force, it also checks the
-- owner's alert (ledger_check_low_balance), under the same lock.
CREATE FUNCTION ledger_announce(p_owner_id text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_balance balances;
    v_held integer;
    v_settings ledger_settings;
BEGIN
    SELECT * INTO v_balance FROM balances b WHERE b.owner_id = p_owner_id;
    v_held := ledger_held(v_balance.owner_id, v_balance.held, v_balance.held_until,
                          clock_timestamp());
    PERFORM pg_notify('ledger_balances', json_build_object(
        'owner_id', v_balance.owner_id, 'balance', v_balance.balance, 'held', v_held,
        'version', v_balance.version,
        'last_updated_us', (extract(epoch FROM v_balance.last_updated) * 1000000)::bigint
    )::text);
    SELECT * INTO v_settings FROM ledger_settings;
    IF v_settings.webhooks AND (v_settings.low_balance IS NOT NULL OR v_settings.owner_alerts)
    THEN
        PERFORM ledger_check_low_balance(p_owner_id, v_balance.balance, v_held,
                                         v_settings.low_balance);
    END IF;
END
$$
