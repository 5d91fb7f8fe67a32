-- One round trip per write, the only way the serving role writes: it runs as the ledger's
-- owner (SECURITY DEFINER) with the search_path pinned to the ledger's schema. The amount
-- and the limit come from the operation's rules in force, never from the caller.
--
-- The outcome is 'created', 'replayed', 'nonce_conflict', 'limit_reached' (retry_after:
-- when the operation is allowed again, NULL for never) or 'insufficient_credits'
-- (required: the credits the overdraft lacked). When a copy of the same request commits
-- between the first nonce lookup and the balance lock, the call raises unique_violation on
-- entries_owner_nonce_key (from the INSERT, or explicitly on the refusal path), or on
-- entries_owner_limit_key when another entry of a limited operation won the period; the
-- whole call rolls back and the caller repeats it, which answers from the committed entry.
CREATE FUNCTION create_entry(
    p_owner_id text, p_operation text, p_nonce text,
    OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
    OUT entry_amount integer, OUT entry_balance_after integer,
    OUT entry_created_on timestamptz, OUT current_balance integer,
    OUT retry_after timestamptz, OUT required integer
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_replay entries;
    v_rule record;
    v_limit record;
    v_move record;
BEGIN
    SELECT * INTO v_replay FROM ledger_entry_by_nonce(p_owner_id, p_nonce);
    IF FOUND THEN
        outcome := CASE WHEN v_replay.operation = p_operation THEN 'replayed'
                        ELSE 'nonce_conflict' END;
        entry_id := v_replay.id;
        entry_operation := v_replay.operation;
        entry_amount := v_replay.amount;
        entry_balance_after := v_replay.balance_after;
        entry_created_on := v_replay.created_on;
        RETURN;
    END IF;

    -- Each step's OUT parameters arrive as one record, assigned as an expression: cheaper
    -- than a SELECT ... FROM step().
    v_rule := ledger_rule_in_force(p_operation);
    v_limit := ledger_limit_reached(p_owner_id, p_operation, v_rule.rule_limit);
    IF v_limit.reached THEN
        outcome := 'limit_reached';
        retry_after := v_limit.retry_after;
        RETURN;
    END IF;

    v_move := ledger_move_balance(p_owner_id, v_rule.rule_amount);
    current_balance := v_move.new_balance;
    entry_created_on := v_move.moved_on;
    IF current_balance IS NULL THEN
        -- A copy of this request that committed while we waited for the lock is the
        -- answer, not a refusal: have the caller repeat the call.
        PERFORM FROM ledger_entry_by_nonce(p_owner_id, p_nonce);
        IF FOUND THEN
            RAISE unique_violation USING CONSTRAINT = 'entries_owner_nonce_key',
                MESSAGE = 'a copy of this entry committed concurrently';
        END IF;
        outcome := 'insufficient_credits';
        required := -v_rule.rule_amount;
        SELECT coalesce(max(b.balance), 0) INTO current_balance
          FROM balances b WHERE b.owner_id = p_owner_id;
        RETURN;
    END IF;

    -- The limit's period is that of the entry's own created_on, taken under the lock.
    entry_id := ledger_append_entry(
        p_owner_id, p_operation, v_rule.rule_amount, current_balance, p_nonce,
        entry_created_on, ledger_limit_key(v_rule.rule_limit, entry_created_on));
    outcome := 'created';
    entry_operation := p_operation;
    entry_amount := v_rule.rule_amount;
    entry_balance_after := current_balance;
END
$$
