-- Writes one event to the outbox, in the caller's transaction and under the owner's balance
-- lock: owner_seq is the balances.version this transaction's change made, so an owner's
-- events sort in commit order by (owner_seq, id). Callers ask ledger_events_on() first.
CREATE FUNCTION ledger_record_event(
    p_owner_id text, p_type text, p_created_on timestamptz, p_data jsonb
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO events (owner_id, owner_seq, type, created_on, data)
    SELECT p_owner_id, b.version, p_type, p_created_on, p_data
      FROM balances b WHERE b.owner_id = p_owner_id
$$
