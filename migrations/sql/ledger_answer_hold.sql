-- A write's answer with `p_hold` as its hold, its status as clients see it now.
CREATE FUNCTION ledger_answer_hold(p_outcome text, p_hold holds)
RETURNS ledger_hold_answer LANGUAGE sql STABLE AS $$
    SELECT ROW(p_outcome, p_hold.id, p_hold.owner_id, p_hold.operation, p_hold.quantity,
               p_hold.amount,
               ledger_hold_status(p_hold.status, p_hold.expires_at, clock_timestamp()),
               p_hold.nonce, p_hold.metadata, p_hold.created_on, p_hold.expires_at,
               p_hold.capture_id, NULL, NULL, NULL)::ledger_hold_answer
$$
