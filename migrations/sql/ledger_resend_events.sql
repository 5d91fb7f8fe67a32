-- Makes dead-lettered events pending again, due now, with a fresh retry window (attempts from 0): all of them, or those of p_ids. Answers how many.
CREATE FUNCTION ledger_resend_events(p_ids bigint[]) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH again AS (
        UPDATE events e
           SET status = 'pending', attempts = 0, next_attempt_at = clock_timestamp(),
               retry_from = clock_timestamp(),
               last_error = NULL
         WHERE e.status = 'dead' AND (p_ids IS NULL OR e.id = ANY(p_ids))
        RETURNING 1)
    SELECT count(*)::integer FROM again
$$
