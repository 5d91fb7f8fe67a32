-- Books what a job used out of its hold: one CAPTURE entry of the hold's operation, nonce
-- and owner for p_quantity units (all of them when NULL) at the hold's own amount per unit,
-- and releases the rest (credits it took from grants pay first, soonest-expiring first; the
-- rest go back to their grants, and lapse at once if those have expired), in one transaction under the owner's balance lock. The hold had
-- reserved the credits, so a capture never fails for lack of them
-- (balances_held_within_balance holds). SECURITY DEFINER, as create_entry(); p_as_owner
-- and p_user_operations restrict an end user to their own holds of the operations they may
-- invoke.
--
-- The outcome is 'created', 'replayed' (the same capture again: its entry), 'not_found',
-- 'operation_not_allowed', 'invalid_quantity' (reserved: the hold's quantity) or
-- 'hold_not_open' (hold_id: a hold captured otherwise, released or expired).
CREATE FUNCTION capture_hold(
    p_hold_id bigint, p_quantity integer, p_metadata jsonb, p_as_owner text,
    p_user_operations text[]
) RETURNS ledger_entry_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_found record;
    v_hold holds;
    v_entry entries;
    v_quantity integer;
    v_amount integer;
    v_uses integer;
    v_row record;
    v_answer ledger_entry_answer;
BEGIN
    SELECT * INTO v_found FROM ledger_hold_for_write(p_hold_id, p_as_owner, p_user_operations);
    v_hold := v_found.hold;
    v_answer.outcome := v_found.refusal;
    v_answer.hold_id := v_hold.id;
    v_answer.reserved := v_hold.quantity;
    v_quantity := coalesce(p_quantity, v_hold.quantity);
    IF v_found.refusal IS NOT NULL THEN
        RETURN v_answer;
    ELSIF v_quantity NOT BETWEEN 1 AND v_hold.quantity THEN
        v_answer.outcome := 'invalid_quantity';
        RETURN v_answer;
    ELSIF v_hold.status = 'captured' THEN
        SELECT * INTO v_entry FROM entries e
         WHERE e.owner_id = v_hold.owner_id AND e.hold_id = v_hold.id;
        IF coalesce(v_entry.quantity, 1) = v_quantity THEN
            RETURN ledger_answer_entry('replayed', v_entry);
        END IF;
    END IF;
    IF ledger_hold_status(v_hold.status, v_hold.expires_at, clock_timestamp()) <> 'open' THEN
        v_answer.outcome := 'hold_not_open';
        RETURN v_answer;
    END IF;

    v_amount := v_hold.amount / v_hold.quantity * v_quantity;
    -- What the hold took from grants pays for the capture first; the rest goes back.
    v_uses := ledger_uses(v_hold.owner_id, NULL, v_hold.id);
    UPDATE balances b
       SET balance = b.balance + v_amount, held = b.held + v_hold.amount,
           expiring = b.expiring + greatest(v_uses + v_amount, 0),
           held_until = CASE WHEN b.held + v_hold.amount = 0 THEN NULL ELSE b.held_until END,
           last_updated = greatest(clock_timestamp(), b.last_updated),
           version = b.version + 1
     WHERE b.owner_id = v_hold.owner_id
    RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version INTO v_row;
    v_entry := ledger_append_entry(
        v_hold.owner_id, v_hold.operation, v_amount, v_row.balance, v_hold.nonce,
        v_row.last_updated, NULL, v_quantity, 'capture',
        coalesce(p_metadata, v_hold.metadata), NULL, v_hold.id);
    UPDATE holds h SET status = 'captured', ended_on = v_entry.created_on,
                       capture_id = v_entry.id
     WHERE h.owner_id = v_hold.owner_id AND h.id = v_hold.id
    RETURNING * INTO v_hold;
    IF v_uses > 0 THEN
        PERFORM ledger_end_hold_uses(v_hold.owner_id, ARRAY[v_hold.id], v_entry.created_on,
                                     -v_amount, v_entry.id);
        PERFORM ledger_track_grants(v_hold.owner_id, v_entry.created_on);
        SELECT b.balance, b.last_updated, b.held, b.held_until, b.version INTO v_row
          FROM balances b WHERE b.owner_id = v_hold.owner_id;
    END IF;
    IF ledger_events_on() THEN
        PERFORM ledger_record_event(v_hold.owner_id, 'hold.captured', v_hold.ended_on,
                                    ledger_hold_event(v_hold));
    END IF;
    PERFORM ledger_announce(v_hold.owner_id, v_row.balance, v_row.held, v_row.held_until,
                            v_row.version, v_row.last_updated);
    RETURN ledger_answer_entry('created', v_entry);
END
$$
