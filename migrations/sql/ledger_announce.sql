-- Announces an owner's balance and held after a write, from the balance row the write left
-- (its balance, held, held_until and version): NOTIFY is delivered to listeners only if, and
-- when, the transaction commits, in commit order. `version` grows with every write of the
-- owner, so a listener can drop what it has seen.
CREATE FUNCTION ledger_announce(
    p_owner_id text, p_balance integer, p_held integer, p_held_until timestamptz,
    p_version bigint, p_last_updated timestamptz
) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('ledger_balances', json_build_object(
        'owner_id', p_owner_id, 'balance', p_balance,
        'held', ledger_held(p_owner_id, p_held, p_held_until, clock_timestamp()),
        'version', p_version,
        'last_updated_us', (extract(epoch FROM p_last_updated) * 1000000)::bigint
    )::text)
$$
