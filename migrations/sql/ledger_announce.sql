-- Announces an owner's balance and held after a write, from the balance row the write left
-- (its balance, held, held_until and version), to the server processes that watch the owner
-- (ledger_watches): NOTIFY is delivered to listeners only if, and
-- when, the transaction commits, in commit order. `version` grows with every write of the
-- owner, so a listener can drop what it has seen. With a webhook configured and a
-- low-balance threshold in force, it also checks the owner's alert
-- (ledger_check_low_balance), under the same lock.
CREATE FUNCTION ledger_announce(
    p_owner_id text, p_balance integer, p_held integer, p_held_until timestamptz,
    p_version bigint, p_last_updated timestamptz
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_held integer := CASE WHEN p_held = 0 OR p_held_until > clock_timestamp() THEN p_held
                           ELSE ledger_held(p_owner_id, clock_timestamp()) END;
    v_settings ledger_settings;
BEGIN
    -- Only for an owner some server process has live subscribers for (ledger_watch), or
    -- whose balance row this write created (a watcher could not have locked it first).
    IF p_version = 1 OR EXISTS (SELECT FROM ledger_watches w WHERE w.owner_id = p_owner_id)
    THEN
        PERFORM pg_notify('ledger_balances', json_build_object(
            'owner_id', p_owner_id, 'balance', p_balance, 'held', v_held,
            'version', p_version,
            'last_updated_us', (extract(epoch FROM p_last_updated) * 1000000)::bigint
        )::text);
    END IF;
    SELECT * INTO v_settings FROM ledger_settings;
    IF v_settings.webhooks AND (v_settings.low_balance IS NOT NULL OR v_settings.owner_alerts)
    THEN
        PERFORM ledger_check_low_balance(p_owner_id, p_balance, v_held,
                                         v_settings.low_balance);
    END IF;
END
$$
