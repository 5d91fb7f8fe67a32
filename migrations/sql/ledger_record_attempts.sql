-- Records the attempts at the events the caller claimed: 'delivered', 'retry' (again at
-- p_next) or 'dead' (the retry window has passed), with what went wrong.
CREATE FUNCTION ledger_record_attempts(
    p_owner_ids text[], p_ids bigint[], p_outcomes text[], p_next timestamptz[],
    p_errors text[]
) RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    UPDATE events e
       SET status = CASE a.outcome WHEN 'retry' THEN 'pending' ELSE a.outcome END,
           attempts = e.attempts + 1,
           delivered_on = CASE WHEN a.outcome = 'delivered' THEN clock_timestamp() END,
           next_attempt_at = coalesce(a.next, e.next_attempt_at),
           last_error = a.error
      FROM unnest(p_owner_ids, p_ids, p_outcomes, p_next, p_errors)
           AS a(owner_id, id, outcome, next, error)
     WHERE e.owner_id = a.owner_id AND e.id = a.id
$$
