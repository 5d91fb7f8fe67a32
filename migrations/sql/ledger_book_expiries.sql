-- Under the owner's balance lock: books out what has lapsed by p_at (not before the
-- owner's newest write). Holds past their expires_at are settled first, which gives their
-- credits back to their grants; then each grant whose expires_at has passed with credits
-- left gets one EXPIRY entry of its operation for them (amount = -remaining, expiry_of
-- naming it), soonest first, and keeps none. Credits an OPEN hold holds are not touched:
-- they lapse when it ends. Answers how many EXPIRY entries it booked. The ledger's own
-- writes: whoever finds them due books them, and a refused write leaves them booked.
CREATE FUNCTION ledger_book_expiries(p_owner_id text, p_at timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_grant record;
    v_row record;
    v_booked integer := 0;
BEGIN
    PERFORM ledger_settle_holds(p_owner_id, p_at);
    FOR v_grant IN
        SELECT g.entry_id, g.operation, g.remaining FROM grants g
         WHERE g.owner_id = p_owner_id AND g.remaining > 0 AND g.expires_at <= p_at
         ORDER BY g.expires_at, g.entry_id
           FOR UPDATE
    LOOP
        UPDATE grants g SET remaining = 0
         WHERE g.owner_id = p_owner_id AND g.entry_id = v_grant.entry_id;
        UPDATE balances b
           SET balance = b.balance - v_grant.remaining,
               expiring = b.expiring - v_grant.remaining,
               last_updated = greatest(p_at, b.last_updated),
               version = b.version + 1
         WHERE b.owner_id = p_owner_id
        RETURNING b.balance, b.last_updated INTO v_row;
        PERFORM ledger_append_entry(
            p_owner_id, v_grant.operation, -v_grant.remaining, v_row.balance, NULL,
            v_row.last_updated, NULL, 1, 'expiry', p_expiry_of => v_grant.entry_id);
        v_booked := v_booked + 1;
    END LOOP;
    UPDATE balances b SET expiring_until = ledger_next_expiry(p_owner_id)
     WHERE b.owner_id = p_owner_id
    RETURNING b.balance, b.held, b.held_until, b.version, b.last_updated INTO v_row;
    IF v_booked > 0 THEN
        PERFORM ledger_announce(p_owner_id, v_row.balance, v_row.held, v_row.held_until,
                                v_row.version, v_row.last_updated);
    END IF;
    RETURN v_booked;
END
$$
