-- The triggers behind holds_end_once and holds_are_kept: a hold changes once, from OPEN to
-- CAPTURED, RELEASED or EXPIRED, and is never deleted, for every role, the owner's
-- included. CREATE OR REPLACE: triggers depend on it (0007 creates them).
CREATE OR REPLACE FUNCTION refuse_hold_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a hold changes once, from OPEN, and is kept: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
