-- A server process (p_watcher) starts watching owners for its live subscribers, and hears
-- their balances as they are now: ledger_announce() notifies for a watched owner. The
-- balances are read FOR SHARE in the same transaction as the watch is written, so a write
-- in flight that checked for watchers before this one committed is waited for and read
-- here, and one that comes later waits for this commit and sees the watch: no update falls
-- between the two. It also records that the watcher is alive, and removes the watches of
-- processes not heard of for five minutes (they ended without saying so). Watching an
-- owner again changes nothing, so a process calls it for all its owners every half minute
-- (BalanceFeed), which also restores its watches if they were removed while it could not
-- reach the database. SECURITY DEFINER: the serving role writes no table itself.
CREATE FUNCTION ledger_watch(p_watcher text, p_owner_ids text[])
RETURNS TABLE (owner_id text, balance integer, last_updated timestamptz, version bigint,
               held integer, lapsed integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO ledger_watchers AS w (watcher, seen_at) VALUES (p_watcher, clock_timestamp())
    ON CONFLICT (watcher) DO UPDATE SET seen_at = excluded.seen_at;
    DELETE FROM ledger_watches x
     USING ledger_watchers w
     WHERE w.watcher = x.watcher AND w.seen_at < clock_timestamp() - interval '5 minutes';
    DELETE FROM ledger_watchers w WHERE w.seen_at < clock_timestamp() - interval '5 minutes';
    INSERT INTO ledger_watches (owner_id, watcher)
    SELECT DISTINCT o, p_watcher FROM unnest(p_owner_ids) AS o
    ON CONFLICT DO NOTHING;
    RETURN QUERY
        SELECT b.owner_id, b.balance, b.last_updated, b.version,
               CASE WHEN b.held = 0 OR b.held_until > clock_timestamp() THEN b.held
                    ELSE ledger_held(b.owner_id, clock_timestamp()) END,
               CASE WHEN b.expiring_until IS NULL OR b.expiring_until > clock_timestamp()
                    THEN 0 ELSE ledger_lapsed(b.owner_id, clock_timestamp()) END
          FROM balances b WHERE b.owner_id = ANY(p_owner_ids)
           FOR SHARE OF b;
END
$$
