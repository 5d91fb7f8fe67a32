-- Reserves p_quantity units of a spending operation for the owner until p_expires_in
-- seconds from now: a hold, which books nothing and counts in balances.held until it is
-- captured, released or expires. Checked against what is available, under the owner's
-- balance lock, like a spend, and taken from grants as a spend takes them (soonest-expiring
-- first): what a hold holds of a grant does not lapse while it is open. SECURITY DEFINER, as create_entry().
--
-- The outcome is 'created', 'replayed' (the same operation and quantity again),
-- 'hold_nonce_conflict' (the nonce names another hold: its columns are answered),
-- 'nonce_conflict' (it names an entry: entry_id), 'not_reservable' (the rule in force is
-- not an unlimited spend), 'insufficient_credits' (current_balance: what is available;
-- required: the whole amount) or 'too_large'. A copy that commits while this one waits for
-- the lock makes it raise unique_violation, and the caller repeats it.
CREATE FUNCTION reserve_credits(
    p_owner_id text, p_operation text, p_nonce text, p_quantity integer,
    p_expires_in integer, p_metadata jsonb
) RETURNS ledger_hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_hold holds;
    v_rule record;
    v_amount bigint;
    v_owner record;
    v_from_grants integer;
    v_row record;
    v_answer ledger_hold_answer;
BEGIN
    SELECT * INTO v_hold FROM ledger_hold_by_nonce(p_owner_id, p_nonce);
    IF FOUND THEN
        RETURN ledger_answer_hold(
            CASE WHEN v_hold.operation = p_operation AND v_hold.quantity = p_quantity
                 THEN 'replayed' ELSE 'hold_nonce_conflict' END,
            v_hold);
    END IF;
    SELECT e.id INTO v_answer.entry_id FROM ledger_entry_by_nonce(p_owner_id, p_nonce) e;
    IF FOUND THEN
        v_answer.outcome := 'nonce_conflict';
        RETURN v_answer;
    END IF;
    SELECT * INTO v_rule FROM ledger_rule_in_force(p_operation);
    v_amount := v_rule.rule_amount::bigint * p_quantity;
    IF v_rule.rule_amount >= 0 OR v_rule.rule_limit IS NOT NULL THEN
        v_answer.outcome := 'not_reservable';
        RETURN v_answer;
    ELSIF v_amount <= -2147483648 THEN  -- no balance covers it; -amount would overflow
        v_answer.outcome := 'too_large';
        RETURN v_answer;
    END IF;

    SELECT * INTO v_owner FROM ledger_available(p_owner_id);
    PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce);
    IF coalesce(v_owner.balance - v_owner.held, 0) + v_amount < 0 THEN
        v_answer.outcome := 'insufficient_credits';
        v_answer.current_balance := coalesce(v_owner.balance - v_owner.held, 0);
        v_answer.required := -v_amount;
        RETURN v_answer;
    END IF;
    PERFORM ledger_settle_holds(p_owner_id, v_owner.at);
    v_from_grants := least(-v_amount, ledger_grants_left(p_owner_id, v_owner.at));
    -- Never before the owner's newest entry, as entries' created_on (v_owner.at), so that a
    -- balance as of an instant never counts a hold without the credits it reserved.
    INSERT INTO holds (owner_id, operation, quantity, amount, nonce, metadata, created_on,
                       expires_at)
    VALUES (p_owner_id, p_operation, p_quantity, v_amount, p_nonce, p_metadata, v_owner.at,
            v_owner.at + make_interval(secs => p_expires_in))
    RETURNING * INTO v_hold;
    UPDATE balances b
       SET held = b.held - v_hold.amount,
           held_until = CASE WHEN b.held = 0 THEN v_hold.expires_at
                             ELSE least(b.held_until, v_hold.expires_at) END,
           expiring = b.expiring - v_from_grants,
           version = b.version + 1
     WHERE b.owner_id = p_owner_id
    RETURNING b.balance, b.held, b.held_until, b.version, b.last_updated INTO v_row;
    IF v_from_grants > 0 THEN
        PERFORM ledger_take_grants(p_owner_id, v_from_grants, v_owner.at, NULL, v_hold.id);
    END IF;
    IF ledger_events_on() THEN
        PERFORM ledger_record_event(p_owner_id, 'hold.reserved', v_hold.created_on,
                                    ledger_hold_event(v_hold));
    END IF;
    PERFORM ledger_announce(p_owner_id, v_row.balance, v_row.held, v_row.held_until,
                            v_row.version, v_row.last_updated);
    RETURN ledger_answer_hold('created', v_hold);
END
$$
