-- Ends an OPEN hold and books nothing: its credits are available again. Releasing a
-- RELEASED hold answers it again ('replayed'); a CAPTURED or EXPIRED one is 'hold_not_open'.
-- 'not_found' and 'operation_not_allowed' as for capture_hold(). SECURITY DEFINER.
CREATE FUNCTION release_hold(
    p_hold_id bigint, p_as_owner text, p_user_operations text[],
    OUT outcome text, OUT hold_id bigint, OUT hold_owner_id text, OUT hold_operation text,
    OUT hold_quantity integer, OUT hold_amount integer, OUT hold_status text,
    OUT hold_nonce text, OUT hold_metadata jsonb, OUT hold_created_on timestamptz,
    OUT hold_expires_at timestamptz, OUT hold_capture_id bigint
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_found record;
    v_hold holds;
BEGIN
    SELECT * INTO v_found FROM ledger_hold_for_write(p_hold_id, p_as_owner, p_user_operations);
    v_hold := v_found.hold;
    IF v_hold.id IS NULL THEN
        outcome := 'not_found';
        RETURN;
    ELSIF NOT v_found.allowed THEN
        outcome := 'operation_not_allowed';
        RETURN;
    END IF;
    hold_status := ledger_hold_status(v_hold.status, v_hold.expires_at, clock_timestamp());
    IF hold_status = 'open' THEN
        UPDATE holds h SET status = 'released', ended_on = clock_timestamp()
         WHERE h.owner_id = v_hold.owner_id AND h.id = v_hold.id
        RETURNING * INTO v_hold;
        UPDATE balances b SET held = b.held + v_hold.amount, version = b.version + 1
         WHERE b.owner_id = v_hold.owner_id;
        IF ledger_events_on() THEN
            PERFORM ledger_record_event(v_hold.owner_id, 'hold.released', v_hold.ended_on,
                                        ledger_hold_event(v_hold));
        END IF;
        PERFORM ledger_announce(v_hold.owner_id);
        outcome := 'released';
        hold_status := 'released';
    ELSE
        outcome := CASE WHEN hold_status = 'released' THEN 'replayed' ELSE 'hold_not_open' END;
    END IF;
    hold_id := v_hold.id;
    hold_owner_id := v_hold.owner_id;
    hold_operation := v_hold.operation;
    hold_quantity := v_hold.quantity;
    hold_amount := v_hold.amount;
    hold_nonce := v_hold.nonce;
    hold_metadata := v_hold.metadata;
    hold_created_on := v_hold.created_on;
    hold_expires_at := v_hold.expires_at;
    hold_capture_id := v_hold.capture_id;
END
$$
