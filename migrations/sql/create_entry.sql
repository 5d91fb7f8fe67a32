-- One round trip per write, and the only way the serving role writes an operation's entry:
-- it runs as the ledger's owner (SECURITY DEFINER) with the search_path pinned to the
-- ledger's schema. The amount (per unit, times p_quantity) and the limit come from the
-- operation's rules in force, never from the caller.
--
-- The outcome is 'created', 'replayed', 'nonce_conflict' (the nonce names another entry),
-- 'hold_nonce_conflict' (it names a hold: hold_id), 'limit_reached' (retry_after: when the
-- operation is allowed again, NULL for never), 'insufficient_credits' (current_balance:
-- what is available; required: the whole amount) or 'too_large' (the amount or the balance
-- would leave the integer range). When a copy of the same request commits between the
-- first nonce lookup and the balance lock, the call raises unique_violation on
-- entries_owner_nonce_key (holds_owner_nonce_key for a hold), or on entries_owner_limit_key
-- when another entry of a limited operation won the period; the whole call rolls back and
-- the caller repeats it, which answers from what committed.
CREATE FUNCTION create_entry(
    p_owner_id text, p_operation text, p_nonce text,
    p_quantity integer DEFAULT 1, p_metadata jsonb DEFAULT NULL,
    OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
    OUT entry_amount integer, OUT entry_balance_after integer,
    OUT entry_created_on timestamptz, OUT current_balance integer,
    OUT retry_after timestamptz, OUT required integer,
    OUT entry_quantity integer, OUT entry_kind text, OUT entry_metadata jsonb,
    OUT entry_refund_of bigint, OUT hold_id bigint
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_replay entries;
    v_rule record;
    v_limit record;
    v_amount bigint;
    v_move record;
BEGIN
    SELECT * INTO v_replay FROM ledger_entry_by_nonce(p_owner_id, p_nonce);
    IF FOUND AND v_replay.hold_id IS NOT NULL THEN  -- a capture's nonce is its hold's
        outcome := 'hold_nonce_conflict';
        hold_id := v_replay.hold_id;
        RETURN;
    ELSIF FOUND THEN
        outcome := CASE WHEN v_replay.operation = p_operation AND v_replay.kind IS NULL
                             AND coalesce(v_replay.quantity, 1) = p_quantity
                        THEN 'replayed' ELSE 'nonce_conflict' END;
        entry_id := v_replay.id;
        entry_operation := v_replay.operation;
        entry_amount := v_replay.amount;
        entry_balance_after := v_replay.balance_after;
        entry_created_on := v_replay.created_on;
        entry_quantity := coalesce(v_replay.quantity, 1);
        entry_kind := v_replay.kind;
        entry_metadata := v_replay.metadata;
        entry_refund_of := v_replay.refund_of;
        RETURN;
    END IF;
    SELECT h.id INTO hold_id FROM ledger_hold_by_nonce(p_owner_id, p_nonce) h;
    IF FOUND THEN
        outcome := 'hold_nonce_conflict';
        RETURN;
    END IF;

    SELECT * INTO v_rule FROM ledger_rule_in_force(p_operation);
    SELECT * INTO v_limit FROM ledger_limit_reached(p_owner_id, p_operation, v_rule.rule_limit);
    IF v_limit.reached THEN
        outcome := 'limit_reached';
        retry_after := v_limit.retry_after;
        RETURN;
    END IF;
    v_amount := v_rule.rule_amount::bigint * p_quantity;
    IF v_amount NOT BETWEEN -2147483648 AND 2147483647 THEN
        outcome := 'too_large';
        RETURN;
    END IF;

    SELECT * INTO v_move FROM ledger_move_balance(p_owner_id, v_amount::integer);
    IF v_move.new_balance IS NULL THEN
        PERFORM ledger_raise_if_nonce_taken(p_owner_id, p_nonce);
        outcome := CASE WHEN v_move.too_large THEN 'too_large' ELSE 'insufficient_credits' END;
        required := -v_amount;
        current_balance := v_move.available;
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM ledger_hold_by_nonce(p_owner_id, p_nonce)) THEN
        RAISE unique_violation USING CONSTRAINT = 'holds_owner_nonce_key',
            MESSAGE = 'a hold with this nonce committed concurrently';
    END IF;

    -- The limit's period is that of the entry's own created_on, taken under the lock.
    entry_id := ledger_append_entry(
        p_owner_id, p_operation, v_amount::integer, v_move.new_balance, p_nonce,
        v_move.moved_on, ledger_limit_key(v_rule.rule_limit, v_move.moved_on),
        p_quantity, NULL, p_metadata);
    PERFORM ledger_announce(p_owner_id, v_move.new_balance, v_move.held, v_move.held_until,
                            v_move.version, v_move.moved_on);
    outcome := 'created';
    entry_operation := p_operation;
    entry_amount := v_amount;
    entry_balance_after := v_move.new_balance;
    entry_created_on := v_move.moved_on;
    current_balance := v_move.new_balance;
    entry_quantity := p_quantity;
    entry_metadata := p_metadata;
END
$$
