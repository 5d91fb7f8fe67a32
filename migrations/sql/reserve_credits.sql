-- Reserves p_quantity units of a spending operation for the owner until p_expires_in
-- seconds from now: a hold, which books nothing and counts in balances.held until it is
-- captured, released or expires. Checked against what is available, under the owner's
-- balance lock, like a spend. SECURITY DEFINER, as create_entry().
--
-- The outcome is 'created', 'replayed' (the same operation and quantity again),
-- 'hold_nonce_conflict' (the nonce names another hold: its columns are answered),
-- 'nonce_conflict' (it names an entry: entry_id), 'not_reservable' (the rule in force is
-- not an unlimited spend), 'insufficient_credits' (current_balance: what is available;
-- required: the whole amount) or 'too_large'. A copy that commits while this one waits for
-- the lock makes it raise unique_violation, and the caller repeats it.
CREATE FUNCTION reserve_credits(
    p_owner_id text, p_operation text, p_nonce text, p_quantity integer,
    p_expires_in integer, p_metadata jsonb,
    OUT outcome text, OUT hold_id bigint, OUT hold_operation text, OUT hold_quantity integer,
    OUT hold_amount integer, OUT hold_status text, OUT hold_metadata jsonb,
    OUT hold_created_on timestamptz, OUT hold_expires_at timestamptz,
    OUT hold_capture_id bigint, OUT current_balance integer, OUT required integer,
    OUT entry_id bigint
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_hold holds;
    v_rule record;
    v_amount bigint;
    v_owner record;
    v_now timestamptz;
BEGIN
    SELECT * INTO v_hold FROM ledger_hold_by_nonce(p_owner_id, p_nonce);
    IF NOT FOUND THEN
        SELECT e.id INTO entry_id FROM ledger_entry_by_nonce(p_owner_id, p_nonce) e;
        IF FOUND THEN
            outcome := 'nonce_conflict';
            RETURN;
        END IF;
        SELECT * INTO v_rule FROM ledger_rule_in_force(p_operation);
        IF v_rule.rule_amount >= 0 OR v_rule.rule_limit IS NOT NULL THEN
            outcome := 'not_reservable';
            RETURN;
        END IF;
        v_amount := v_rule.rule_amount::bigint * p_quantity;
        IF v_amount < -2147483648 THEN
            outcome := 'too_large';
            RETURN;
        END IF;
        SELECT * INTO v_owner FROM ledger_settle_holds(p_owner_id);
        IF coalesce(v_owner.balance - v_owner.held, 0) + v_amount < 0 THEN
            PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce);
            outcome := 'insufficient_credits';
            current_balance := coalesce(v_owner.balance - v_owner.held, 0);
            required := -v_amount;
            RETURN;
        END IF;
        PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce);
        v_now := clock_timestamp();
        INSERT INTO holds (owner_id, operation, quantity, amount, nonce, metadata, created_on,
                           expires_at)
        VALUES (p_owner_id, p_operation, p_quantity, v_amount, p_nonce, p_metadata, v_now,
                v_now + make_interval(secs => p_expires_in))
        RETURNING * INTO v_hold;
        UPDATE balances b
           SET held = b.held - v_hold.amount,
               held_until = CASE WHEN b.held = 0 THEN v_hold.expires_at
                                 ELSE least(b.held_until, v_hold.expires_at) END,
               version = b.version + 1
         WHERE b.owner_id = p_owner_id;
        IF ledger_events_on() THEN
            PERFORM ledger_record_event(p_owner_id, 'hold.reserved', v_hold.created_on,
                                        ledger_hold_event(v_hold));
        END IF;
        PERFORM ledger_announce(p_owner_id);
        outcome := 'created';
    ELSIF v_hold.operation = p_operation AND v_hold.quantity = p_quantity THEN
        outcome := 'replayed';
    ELSE
        outcome := 'hold_nonce_conflict';
    END IF;
    hold_id := v_hold.id;
    hold_operation := v_hold.operation;
    hold_quantity := v_hold.quantity;
    hold_amount := v_hold.amount;
    hold_status := ledger_hold_status(v_hold.status, v_hold.expires_at, clock_timestamp());
    hold_metadata := v_hold.metadata;
    hold_created_on := v_hold.created_on;
    hold_expires_at := v_hold.expires_at;
    hold_capture_id := v_hold.capture_id;
END
$$
