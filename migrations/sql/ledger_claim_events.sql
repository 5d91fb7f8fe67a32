-- Claims up to p_limit due events for delivery, each the oldest pending event of its owner
-- by (owner_seq, id), locked until the caller's transaction ends. An owner whose oldest
-- pending event is not yet due (a retry waiting), or is locked by another process delivering
-- it, has none claimed: its later events wait for that one. A process that dies mid-delivery
-- releases its locks with its connection, and the events are claimed again.
CREATE FUNCTION ledger_claim_events(p_limit integer) RETURNS SETOF events
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT e.* FROM events e
     WHERE e.status = 'pending' AND e.next_attempt_at <= clock_timestamp()
       AND NOT EXISTS (SELECT FROM events p
                        WHERE p.owner_id = e.owner_id AND p.status = 'pending'
                          AND (p.owner_seq, p.id) < (e.owner_seq, e.id))
     ORDER BY e.next_attempt_at
     LIMIT p_limit
     FOR UPDATE SKIP LOCKED
$$
