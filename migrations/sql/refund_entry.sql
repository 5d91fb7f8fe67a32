-- Reverses one OPERATION or CAPTURE entry: a REFUND entry of the same owner, operation and
-- quantity and the opposite amount, refund_of naming the original, under the owner's
-- balance lock. An entry is refunded at most once (entries_owner_refund_key). Refunding a
-- credit takes its credits back, so it needs them available. Idempotent by (owner, nonce).
-- SECURITY DEFINER, as create_entry(); only backend services call it.
--
-- The outcome is 'created', 'replayed' (this nonce already refunded this entry),
-- 'not_found', 'not_refundable' (a REFUND or EXPIRY entry), 'already_refunded' (its
-- refund's columns), 'nonce_conflict' (the nonce names another entry: its columns),
-- 'hold_nonce_conflict' (it names a hold: hold_id), 'insufficient_credits'
-- (current_balance: what is available; required) or 'too_large'.
CREATE FUNCTION refund_entry(
    p_entry_id bigint, p_nonce text, p_metadata jsonb,
    OUT outcome text, OUT entry_id bigint, OUT entry_owner_id text, OUT entry_operation text,
    OUT entry_amount integer, OUT entry_balance_after integer, OUT entry_nonce text,
    OUT entry_created_on timestamptz, OUT entry_quantity integer, OUT entry_kind text,
    OUT entry_metadata jsonb, OUT entry_refund_of bigint, OUT hold_id bigint,
    OUT current_balance integer, OUT required integer
) LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_original entries;
    v_answer entries;
    v_move record;
BEGIN
    SELECT * INTO v_original FROM entries e WHERE e.id = p_entry_id;
    IF NOT FOUND THEN
        outcome := 'not_found';
        RETURN;
    END IF;
    SELECT * INTO v_answer FROM ledger_entry_by_nonce(v_original.owner_id, p_nonce);
    IF FOUND THEN
        outcome := CASE WHEN v_answer.hold_id IS NOT NULL THEN 'hold_nonce_conflict'
                        WHEN v_answer.refund_of = p_entry_id THEN 'replayed'
                        ELSE 'nonce_conflict' END;
        hold_id := v_answer.hold_id;
    ELSE
        SELECT h.id INTO hold_id FROM ledger_hold_by_nonce(v_original.owner_id, p_nonce) h;
        IF FOUND THEN
            outcome := 'hold_nonce_conflict';
            RETURN;
        ELSIF v_original.kind IN ('refund', 'expiry') THEN
            outcome := 'not_refundable';
            v_answer := v_original;
        ELSE
            SELECT * INTO v_answer FROM entries e
             WHERE e.owner_id = v_original.owner_id AND e.refund_of = p_entry_id;
            outcome := CASE WHEN FOUND THEN 'already_refunded' END;
        END IF;
    END IF;
    IF outcome IS NULL THEN
        SELECT * INTO v_move FROM ledger_move_balance(v_original.owner_id, -v_original.amount);
        IF v_move.new_balance IS NULL THEN
            PERFORM ledger_raise_if_nonce_taken(v_original.owner_id, p_nonce);
            IF EXISTS (SELECT FROM entries e WHERE e.owner_id = v_original.owner_id
                                              AND e.refund_of = p_entry_id) THEN
                RAISE unique_violation USING CONSTRAINT = 'entries_owner_refund_key',
                    MESSAGE = 'a refund of this entry committed concurrently';
            END IF;
            outcome := CASE WHEN v_move.too_large THEN 'too_large'
                            ELSE 'insufficient_credits' END;
            current_balance := v_move.available;
            required := v_original.amount;
            RETURN;
        END IF;
        IF EXISTS (SELECT FROM ledger_hold_by_nonce(v_original.owner_id, p_nonce)) THEN
            RAISE unique_violation USING CONSTRAINT = 'holds_owner_nonce_key',
                MESSAGE = 'a hold with this nonce committed concurrently';
        END IF;
        entry_id := ledger_append_entry(
            v_original.owner_id, v_original.operation, -v_original.amount, v_move.new_balance,
            p_nonce, v_move.moved_on, NULL, coalesce(v_original.quantity, 1), 'refund',
            p_metadata, p_entry_id, NULL);
        PERFORM ledger_announce(v_original.owner_id, v_move.new_balance, v_move.held,
                                v_move.held_until, v_move.version, v_move.moved_on);
        SELECT * INTO v_answer FROM entries e
         WHERE e.owner_id = v_original.owner_id AND e.refund_of = p_entry_id;
        outcome := 'created';
    END IF;
    IF v_answer.id IS NOT NULL THEN
        entry_id := v_answer.id;
        entry_owner_id := v_answer.owner_id;
        entry_operation := v_answer.operation;
        entry_amount := v_answer.amount;
        entry_balance_after := v_answer.balance_after;
        entry_nonce := v_answer.nonce;
        entry_created_on := v_answer.created_on;
        entry_quantity := coalesce(v_answer.quantity, 1);
        entry_kind := v_answer.kind;
        entry_metadata := v_answer.metadata;
        entry_refund_of := v_answer.refund_of;
    END IF;
END
$$
