-- Under the owner's balance lock, as holds end: what the holds p_hold_ids took from grants
-- goes back to those grants (their remaining), except the first p_captured credits, soonest-
-- expiring first, which a capture (p_entry_id, booked at p_at) spends: recorded as its
-- grant_uses, taken when the hold took them. Answers the credits given back, which the
-- caller has added to balances.expiring; a grant that has expired meanwhile then holds
-- lapsed credits, which the caller books (ledger_track_grants).
CREATE FUNCTION ledger_end_hold_uses(
    p_owner_id text, p_hold_ids bigint[], p_at timestamptz,
    p_captured integer DEFAULT 0, p_entry_id bigint DEFAULT NULL
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_use record;
    v_spent integer;
    v_left integer := p_captured;
    v_back integer := 0;
BEGIN
    FOR v_use IN
        SELECT u.grant_id, u.credits, u.taken_on, u.expires_at FROM grant_uses u
         WHERE u.owner_id = p_owner_id AND u.hold_id = ANY(p_hold_ids)
         ORDER BY u.expires_at, u.grant_id
    LOOP
        v_spent := least(v_left, v_use.credits);
        IF v_spent > 0 THEN
            INSERT INTO grant_uses (owner_id, grant_id, entry_id, credits, taken_on, moved_on,
                                    expires_at)
            VALUES (p_owner_id, v_use.grant_id, p_entry_id, v_spent, v_use.taken_on, p_at,
                    v_use.expires_at);
            v_left := v_left - v_spent;
        END IF;
        IF v_use.credits > v_spent THEN
            UPDATE grants g SET remaining = g.remaining + v_use.credits - v_spent
             WHERE g.owner_id = p_owner_id AND g.entry_id = v_use.grant_id;
            v_back := v_back + v_use.credits - v_spent;
        END IF;
    END LOOP;
    RETURN v_back;
END
$$
