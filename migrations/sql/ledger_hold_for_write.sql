-- The hold a capture or a release acts on, locked, after the owner's balance row (the
-- order every writer of the owner takes its locks in); or why the caller may not act on
-- it, once what has lapsed is booked: 'not_found' when there is no such hold, or the caller is an end user (p_as_owner)
-- and it is not theirs; 'operation_not_allowed' when the end user may not invoke its
-- operation (p_user_operations).
CREATE FUNCTION ledger_hold_for_write(
    p_hold_id bigint, p_as_owner text, p_user_operations text[],
    OUT hold holds, OUT refusal text
) LANGUAGE plpgsql AS $$
DECLARE
    v_owner_id text;
    v_owner record;
BEGIN
    SELECT h.owner_id INTO v_owner_id FROM holds h WHERE h.id = p_hold_id;
    IF NOT FOUND OR v_owner_id IS DISTINCT FROM coalesce(p_as_owner, v_owner_id) THEN
        refusal := 'not_found';
        RETURN;
    END IF;
    SELECT b.expiring_until, greatest(clock_timestamp(), b.last_updated) AS at INTO v_owner
      FROM balances b WHERE b.owner_id = v_owner_id FOR UPDATE;
    IF v_owner.expiring_until <= v_owner.at THEN
        PERFORM ledger_book_expiries(v_owner_id, v_owner.at);  -- due before any write
    END IF;
    SELECT * INTO hold FROM holds h
     WHERE h.owner_id = v_owner_id AND h.id = p_hold_id FOR UPDATE;
    IF p_user_operations IS NOT NULL AND NOT hold.operation = ANY(p_user_operations) THEN
        refusal := 'operation_not_allowed';
    END IF;
END
$$
