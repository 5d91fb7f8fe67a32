-- The expiry pass, which every serving process runs every LEDGER_EXPIRY_INTERVAL seconds
-- (graphql_ledger/expiry.py): books what has lapsed for owners whose balances.expiring_until has
-- passed, soonest first, until about p_limit EXPIRY entries are booked; answers how many.
-- Owners whose balance row a write holds are skipped (SKIP LOCKED): that write books them
-- itself, and no pass waits for a write or another pass; the row lock makes each booking
-- happen once, however many processes run it. Each call is one short transaction, so a
-- backlog is worked off in batches that each hold a few owners' locks for milliseconds.
-- SECURITY DEFINER, as create_entry().
CREATE FUNCTION ledger_expire_grants(p_limit integer)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_owner record;
    v_booked integer := 0;
BEGIN
    FOR v_owner IN
        SELECT b.owner_id, b.last_updated FROM balances b
         WHERE b.expiring_until <= clock_timestamp()
         ORDER BY b.expiring_until
         LIMIT p_limit
           FOR UPDATE SKIP LOCKED
    LOOP
        v_booked := v_booked + ledger_book_expiries(
            v_owner.owner_id, greatest(clock_timestamp(), v_owner.last_updated));
        EXIT WHEN v_booked >= p_limit;
    END LOOP;
    RETURN v_booked;
END
$$
