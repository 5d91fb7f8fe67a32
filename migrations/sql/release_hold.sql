-- Ends an OPEN hold and books nothing: its credits are available again. Releasing a
-- RELEASED hold answers it again ('replayed'); a CAPTURED or EXPIRED one is 'hold_not_open'.
-- 'not_found' and 'operation_not_allowed' as for capture_hold(). SECURITY DEFINER.
CREATE FUNCTION release_hold(p_hold_id bigint, p_as_owner text, p_user_operations text[])
RETURNS ledger_hold_answer
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_refusal ledger_hold_answer;
    v_found record;
    v_hold holds;
    v_uses integer;
    v_row record;
BEGIN
    SELECT * INTO v_found FROM ledger_hold_for_write(p_hold_id, p_as_owner, p_user_operations);
    IF v_found.refusal IS NOT NULL THEN
        v_refusal.outcome := v_found.refusal;
        RETURN v_refusal;
    END IF;
    CASE ledger_hold_status((v_found.hold).status, (v_found.hold).expires_at, clock_timestamp())
        WHEN 'released' THEN
            RETURN ledger_answer_hold('replayed', v_found.hold);
        WHEN 'open' THEN
            UPDATE holds h SET status = 'released',
                               ended_on = greatest(clock_timestamp(), h.created_on)
             WHERE h.owner_id = (v_found.hold).owner_id AND h.id = p_hold_id
            RETURNING * INTO v_hold;
            v_uses := ledger_uses(v_hold.owner_id, NULL, v_hold.id);
            UPDATE balances b
               SET held = b.held + (v_found.hold).amount, version = b.version + 1,
                   expiring = b.expiring + v_uses,
                   held_until = CASE WHEN b.held + (v_found.hold).amount = 0 THEN NULL
                                     ELSE b.held_until END
             WHERE b.owner_id = (v_found.hold).owner_id
            RETURNING b.balance, b.held, b.held_until, b.version, b.last_updated,
                      greatest(clock_timestamp(), b.last_updated) AS at INTO v_row;
            IF v_uses > 0 THEN  -- back to their grants, lapsing at once if they expired
                PERFORM ledger_end_hold_uses(v_hold.owner_id, ARRAY[v_hold.id], v_row.at);
                PERFORM ledger_track_grants(v_hold.owner_id, v_row.at);
                SELECT b.balance, b.held, b.held_until, b.version, b.last_updated INTO v_row
                  FROM balances b WHERE b.owner_id = v_hold.owner_id;
            END IF;
            IF ledger_events_on() THEN
                PERFORM ledger_record_event(v_hold.owner_id, 'hold.released', v_hold.ended_on,
                                            ledger_hold_event(v_hold));
            END IF;
            PERFORM ledger_announce((v_found.hold).owner_id, v_row.balance, v_row.held,
                                    v_row.held_until, v_row.version, v_row.last_updated);
            RETURN ledger_answer_hold('released', v_hold);
        ELSE
            RETURN ledger_answer_hold('hold_not_open', v_found.hold);
    END CASE;
END
$$
