-- A server process no longer has live subscribers for these owners. SECURITY DEFINER.
CREATE FUNCTION ledger_unwatch(p_watcher text, p_owner_ids text[])
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    DELETE FROM ledger_watches w WHERE w.watcher = p_watcher AND w.owner_id = ANY(p_owner_ids)
$$
