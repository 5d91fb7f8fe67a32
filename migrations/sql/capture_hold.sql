-- Books what a job used out of its hold: one CAPTURE entry of the hold's operation, nonce
-- and owner for p_quantity units (all of them when NULL) at the hold's own amount per unit,
-- and releases the rest, in one transaction under the owner's balance lock. The hold had
-- reserved the credits, so a capture never fails for lack of them (balances_held_within_balance
-- holds). SECURITY DEFINER, as create_entry(); p_as_owner and p_user_operations restrict
-- an end user to their own holds of the operations they may invoke.
--
-- The outcome is 'created', 'replayed' (the same capture again: its entry), 'not_found',
-- 'operation_not_allowed', 'invalid_quantity' (reserved: the hold's quantity) or
-- 'hold_not_open' (hold_id: a hold captured otherwise, released or expired).
CREATE FUNCTION capture_hold(
    p_hold_id bigint, p_quantity integer, p_metadata jsonb, p_as_owner text,
    p_user_operations text[],
    OUT outcome text, OUT entry_id bigint, OUT entry_owner_id text, OUT entry_operation text,
    OUT entry_amount integer, OUT entry_balance_after integer, OUT entry_nonce text,
    OUT entry_created_on timestamptz, OUT entry_quantity integer, OUT entry_kind text,
    OUT entry_metadata jsonb, OUT entry_refund_of bigint, OUT hold_id bigint,
    OUT reserved integer
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_found record;
    v_hold holds;
    v_entry entries;
    v_quantity integer;
    v_amount integer;
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
    hold_id := v_hold.id;
    reserved := v_hold.quantity;
    v_quantity := coalesce(p_quantity, v_hold.quantity);
    IF v_quantity NOT BETWEEN 1 AND v_hold.quantity THEN
        outcome := 'invalid_quantity';
        RETURN;
    END IF;
    IF v_hold.status = 'captured' THEN
        SELECT * INTO v_entry FROM entries e
         WHERE e.owner_id = v_hold.owner_id AND e.hold_id = v_hold.id;
        outcome := CASE WHEN coalesce(v_entry.quantity, 1) = v_quantity
                        THEN 'replayed' ELSE 'hold_not_open' END;
    ELSIF ledger_hold_status(v_hold.status, v_hold.expires_at, clock_timestamp()) <> 'open' THEN
        outcome := 'hold_not_open';
        RETURN;
    ELSE
        v_amount := v_hold.amount / v_hold.quantity * v_quantity;
        UPDATE balances b
           SET balance = b.balance + v_amount, held = b.held + v_hold.amount,
               last_updated = greatest(clock_timestamp(), b.last_updated),
               version = b.version + 1
         WHERE b.owner_id = v_hold.owner_id
        RETURNING b.balance, b.last_updated
             INTO v_entry.balance_after, v_entry.created_on;
        v_entry.id := ledger_append_entry(
            v_hold.owner_id, v_hold.operation, v_amount, v_entry.balance_after, v_hold.nonce,
            v_entry.created_on, NULL, v_quantity, 'capture',
            coalesce(p_metadata, v_hold.metadata), NULL, v_hold.id);
        UPDATE holds h SET status = 'captured', ended_on = v_entry.created_on,
                           capture_id = v_entry.id
         WHERE h.owner_id = v_hold.owner_id AND h.id = v_hold.id
        RETURNING * INTO v_hold;
        IF ledger_events_on() THEN
            PERFORM ledger_record_event(v_hold.owner_id, 'hold.captured', v_hold.ended_on,
                                        ledger_hold_event(v_hold));
        END IF;
        SELECT * INTO v_entry FROM entries e
         WHERE e.owner_id = v_hold.owner_id AND e.hold_id = v_hold.id;
        outcome := 'created';
    END IF;
    IF outcome IN ('created', 'replayed') THEN
        entry_id := v_entry.id;
        entry_owner_id := v_entry.owner_id;
        entry_operation := v_entry.operation;
        entry_amount := v_entry.amount;
        entry_balance_after := v_entry.balance_after;
        entry_nonce := v_entry.nonce;
        entry_created_on := v_entry.created_on;
        entry_quantity := coalesce(v_entry.quantity, 1);
        entry_kind := v_entry.kind;
        entry_metadata := v_entry.metadata;
    END IF;
END
$$
