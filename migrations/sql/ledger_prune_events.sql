-- Deletes up to p_limit events delivered before p_before; answers how many. Bounded, so
-- that pruning a long backlog never holds a long transaction: the caller repeats it.
CREATE FUNCTION ledger_prune_events(p_before timestamptz, p_limit integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    WITH gone AS (
        DELETE FROM events e
         WHERE (e.owner_id, e.id) IN (
               SELECT d.owner_id, d.id FROM events d
                WHERE d.status = 'delivered' AND d.delivered_on < p_before
                LIMIT p_limit)
        RETURNING 1)
    SELECT count(*)::integer FROM gone
$$
