-- Announces the owner's balance and held on ledger_balances after a write: NOTIFY is
-- delivered to listeners only if, and when, the transaction commits, in commit order.
-- `version` grows with every write of the owner, so a listener can drop what it has seen.
CREATE FUNCTION ledger_announce(p_owner_id text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_notify('ledger_balances', json_build_object(
        'owner_id', b.owner_id, 'balance', b.balance,
        'held', ledger_held(b.owner_id, b.held, b.held_until, clock_timestamp()),
        'version', b.version,
        'last_updated_us', (extract(epoch FROM b.last_updated) * 1000000)::bigint
    )::text)
      FROM balances b WHERE b.owner_id = p_owner_id
$$
