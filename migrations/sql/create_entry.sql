-- One round trip per write, and the only way the serving role writes an operation's entry:
-- it runs as the ledger's owner (SECURITY DEFINER) with the search_path pinned to the
-- ledger's schema. The amount (per unit, times p_quantity) and the limit come from the
-- operation's rules in force, never from the caller. A credit expires at p_expires_at (a
-- service's choice), else after the rule's lifetime, if it has one: a grant.
--
-- The outcome is 'created', 'replayed', 'nonce_conflict' (the nonce names another entry),
-- 'hold_nonce_conflict' (it names a hold: hold_id), 'limit_reached' (retry_after: when the
-- operation is allowed again, NULL for never), 'insufficient_credits' (current_balance:
-- what is available; required: the whole amount) or 'too_large' (the amount or the balance
-- would leave the integer range) or 'not_expiring' (p_expires_at on an entry that adds no
-- credits); a p_expires_at that is not after the entry's created_on raises SQLSTATE LG001,
-- which rolls the call back (the caller answers InvalidInput). When a copy of the same request commits between the
-- first nonce lookup and the balance lock, the call raises unique_violation on
-- entries_owner_nonce_key (holds_owner_nonce_key for a hold), or on entries_owner_limit_key
-- when another entry of a limited operation won the period; the whole call rolls back and
-- the caller repeats it, which answers from what committed.
CREATE FUNCTION create_entry(
    p_owner_id text, p_operation text, p_nonce text,
    p_quantity integer DEFAULT 1, p_metadata jsonb DEFAULT NULL,
    p_expires_at timestamptz DEFAULT NULL
) RETURNS ledger_entry_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_entry entries;
    v_rule record;
    v_limit record;
    v_amount bigint;
    v_expires_at timestamptz;
    v_move record;
    v_answer ledger_entry_answer;
BEGIN
    SELECT * INTO v_entry FROM ledger_entry_by_nonce(p_owner_id, p_nonce);
    IF FOUND THEN
        RETURN ledger_answer_entry(
            CASE WHEN v_entry.hold_id IS NOT NULL THEN 'hold_nonce_conflict'  -- a capture's
                 WHEN v_entry.operation = p_operation AND v_entry.kind IS NULL
                      AND coalesce(v_entry.quantity, 1) = p_quantity THEN 'replayed'
                 ELSE 'nonce_conflict' END,
            v_entry);
    END IF;
    v_answer.hold_id := (SELECT h.id FROM ledger_hold_by_nonce(p_owner_id, p_nonce) h);
    IF v_answer.hold_id IS NOT NULL THEN
        v_answer.outcome := 'hold_nonce_conflict';
        RETURN v_answer;
    END IF;

    SELECT * INTO v_rule FROM ledger_rule_in_force(p_operation);
    IF v_rule.rule_limit IS NOT NULL THEN
        SELECT * INTO v_limit
          FROM ledger_limit_reached(p_owner_id, p_operation, v_rule.rule_limit);
        IF v_limit.reached THEN
            v_answer.outcome := 'limit_reached';
            v_answer.retry_after := v_limit.retry_after;
            RETURN v_answer;
        END IF;
    END IF;
    v_amount := v_rule.rule_amount::bigint * p_quantity;
    IF v_amount NOT BETWEEN -2147483647 AND 2147483647 THEN
        v_answer.outcome := 'too_large';
        RETURN v_answer;
    ELSIF p_expires_at IS NOT NULL AND v_amount <= 0 THEN
        v_answer.outcome := 'not_expiring';
        RETURN v_answer;
    END IF;
    IF v_amount > 0 THEN
        -- The lifetime runs from created_on, which the move decides: this earlier estimate
        -- only brings expiring_until forward until ledger_track_grants sets it.
        v_expires_at := coalesce(p_expires_at, clock_timestamp() + v_rule.rule_lifetime);
    END IF;

    SELECT * INTO v_move
      FROM ledger_move_balance(p_owner_id, v_amount::integer,
                               CASE WHEN v_expires_at IS NULL THEN 0 ELSE v_amount::integer END,
                               v_expires_at);
    IF v_move.new_balance IS NULL THEN
        PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce);
        v_answer.outcome := CASE WHEN v_move.too_large THEN 'too_large'
                                 ELSE 'insufficient_credits' END;
        v_answer.required := -v_amount;
        v_answer.current_balance := v_move.available;
        RETURN v_answer;
    END IF;
    PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce, p_entries => false);
    IF v_expires_at IS NOT NULL THEN
        v_expires_at := coalesce(p_expires_at, v_move.moved_on + v_rule.rule_lifetime);
        IF v_expires_at <= v_move.moved_on THEN
            RAISE EXCEPTION 'expiresAt % is not after the entry''s createdOn %', v_expires_at,
                v_move.moved_on USING ERRCODE = 'LG001';  -- rolls the move back
        END IF;
    END IF;

    -- The limit's period is that of the entry's own created_on, taken under the lock.
    v_entry := ledger_append_entry(
        p_owner_id, p_operation, v_amount::integer, v_move.new_balance, p_nonce,
        v_move.moved_on, ledger_limit_key(v_rule.rule_limit, v_move.moved_on),
        p_quantity, NULL, p_metadata, p_expires_at => v_expires_at,
        p_given => p_expires_at IS NOT NULL);
    IF v_move.from_grants > 0 THEN
        PERFORM ledger_take_grants(p_owner_id, v_move.from_grants, v_move.moved_on, v_entry.id,
                                   NULL);
    ELSIF v_expires_at IS NOT NULL THEN
        PERFORM ledger_track_grants(p_owner_id, v_move.moved_on);
    END IF;
    PERFORM ledger_announce(p_owner_id, v_move.new_balance, v_move.held, v_move.held_until,
                            v_move.version, v_move.moved_on);
    v_answer := ledger_answer_entry('created', v_entry);
    v_answer.current_balance := v_move.new_balance;
    RETURN v_answer;
END
$$
