-- Reverses one OPERATION or CAPTURE entry: a REFUND entry of the same owner, operation and
-- quantity and the opposite amount, refund_of naming the original, under the owner's
-- balance lock. An entry is refunded at most once (entries_owner_refund_key). Refunding a
-- credit takes its credits back, so it needs them available. Idempotent by (owner, nonce).
-- A spend's refund gives what it took from grants back to them (lapsing at once where
-- they have expired); a credit's refund takes its own credits first: an expiring one's
-- remaining, or for one that never expires, credits that never expire.
-- SECURITY DEFINER, as create_entry(); only backend services call it.
--
-- The outcome is 'created', 'replayed' (this nonce already refunded this entry),
-- 'not_found', 'not_refundable' (a REFUND or EXPIRY entry), 'already_refunded' (its
-- refund's columns), 'nonce_conflict' (the nonce names another entry: its columns),
-- 'hold_nonce_conflict' (it names a hold: hold_id), 'insufficient_credits'
-- (current_balance: what is available; required) or 'too_large'.
CREATE FUNCTION refund_entry(p_entry_id bigint, p_nonce text, p_metadata jsonb)
RETURNS ledger_entry_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_original entries;
    v_entry entries;
    v_move record;
    v_back integer := 0;
    v_answer ledger_entry_answer;
BEGIN
    SELECT * INTO v_original FROM entries e WHERE e.id = p_entry_id;
    IF NOT FOUND THEN
        v_answer.outcome := 'not_found';
        RETURN v_answer;
    END IF;
    SELECT * INTO v_entry FROM ledger_entry_by_nonce(v_original.owner_id, p_nonce);
    IF FOUND THEN
        RETURN ledger_answer_entry(
            CASE WHEN v_entry.hold_id IS NOT NULL THEN 'hold_nonce_conflict'
                 WHEN v_entry.refund_of = p_entry_id THEN 'replayed'
                 ELSE 'nonce_conflict' END,
            v_entry);
    END IF;
    SELECT h.id INTO v_answer.hold_id FROM ledger_hold_by_nonce(v_original.owner_id, p_nonce) h;
    IF FOUND THEN
        v_answer.outcome := 'hold_nonce_conflict';
        RETURN v_answer;
    ELSIF v_original.kind IN ('refund', 'expiry') THEN
        RETURN ledger_answer_entry('not_refundable', v_original);
    END IF;
    SELECT * INTO v_entry FROM entries e
     WHERE e.owner_id = v_original.owner_id AND e.refund_of = p_entry_id;
    IF FOUND THEN
        RETURN ledger_answer_entry('already_refunded', v_entry);
    END IF;

    IF v_original.amount < 0 THEN
        v_back := ledger_uses(v_original.owner_id, p_entry_id, NULL);
    END IF;
    SELECT * INTO v_move
      FROM ledger_move_balance(v_original.owner_id, -v_original.amount, v_back,
                               p_pool_first => v_original.amount > 0
                                               AND v_original.expires_at IS NULL);
    IF v_move.new_balance IS NULL THEN
        PERFORM ledger_raise_if_nonce_taken(v_original.owner_id, p_nonce);
        IF EXISTS (SELECT FROM entries e WHERE e.owner_id = v_original.owner_id
                                          AND e.refund_of = p_entry_id) THEN
            RAISE unique_violation USING CONSTRAINT = 'entries_owner_refund_key',
                MESSAGE = 'a refund of this entry committed concurrently';
        END IF;
        v_answer.outcome := CASE WHEN v_move.too_large THEN 'too_large'
                                 ELSE 'insufficient_credits' END;
        v_answer.current_balance := v_move.available;
        v_answer.required := v_original.amount;
        RETURN v_answer;
    END IF;
    PERFORM ledger_raise_if_nonce_taken(v_original.owner_id, p_nonce, p_entries => false);
    v_entry := ledger_append_entry(
        v_original.owner_id, v_original.operation, -v_original.amount, v_move.new_balance,
        p_nonce, v_move.moved_on, NULL, coalesce(v_original.quantity, 1), 'refund',
        p_metadata, p_entry_id, NULL);
    IF v_back > 0 THEN
        PERFORM ledger_give_back(v_original.owner_id, p_entry_id, v_entry.id, v_move.moved_on);
        PERFORM ledger_track_grants(v_original.owner_id, v_move.moved_on);
    ELSIF v_move.from_grants > 0 THEN  -- a refunded grant gives back its own credits first
        PERFORM ledger_take_grants(v_original.owner_id, v_move.from_grants, v_move.moved_on,
                                   v_entry.id, NULL, p_first_grant => p_entry_id);
    END IF;
    PERFORM ledger_announce(v_original.owner_id, v_move.new_balance, v_move.held,
                            v_move.held_until, v_move.version, v_move.moved_on);
    RETURN ledger_answer_entry('created', v_entry);
END
$$
