-- Locks the owner's balance row and moves it by p_amount: the row lock orders the owner's
-- writes. A credit creates the row if needed; a debit moves it only if what is available
-- (the balance less what open holds reserve) stays >= 0, and otherwise answers NULLs with
-- `available`. moved_on never runs backwards within an owner, even if the clock does; a
-- balance past the integer range answers NULLs with too_large.
--
-- The common debit takes one statement: when no hold is open, or none has expired yet
-- (held_until ahead), balances.held is exact. Otherwise the owner's holds are settled first.
CREATE FUNCTION ledger_move_balance(
    p_owner_id text, p_amount integer,
    OUT new_balance integer, OUT moved_on timestamptz, OUT available integer,
    OUT too_large boolean, OUT held integer, OUT held_until timestamptz, OUT version bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_settled record;
BEGIN
    too_large := false;
    IF p_amount >= 0 THEN
        INSERT INTO balances AS b (owner_id, balance, last_updated, version)
        VALUES (p_owner_id, p_amount, clock_timestamp(), 1)
        ON CONFLICT (owner_id) DO UPDATE
            SET balance = b.balance + excluded.balance,
                last_updated = greatest(clock_timestamp(), b.last_updated),
                version = b.version + 1
            WHERE b.balance::bigint + excluded.balance <= 2147483647
        RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
             INTO new_balance, moved_on, held, held_until, version;
        too_large := new_balance IS NULL;
        RETURN;
    END IF;
    UPDATE balances AS b
       SET balance = b.balance + p_amount,
           last_updated = greatest(clock_timestamp(), b.last_updated),
           version = b.version + 1
     WHERE b.owner_id = p_owner_id AND b.balance + p_amount >= b.held
       AND (b.held = 0 OR b.held_until > clock_timestamp())
    RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
         INTO new_balance, moved_on, held, held_until, version;
    IF FOUND THEN
        RETURN;
    END IF;
    SELECT * INTO v_settled FROM ledger_settle_holds(p_owner_id);
    UPDATE balances AS b
       SET balance = b.balance + p_amount,
           last_updated = greatest(clock_timestamp(), b.last_updated),
           version = b.version + 1
     WHERE b.owner_id = p_owner_id AND b.balance + p_amount >= b.held
    RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
         INTO new_balance, moved_on, held, held_until, version;
    IF NOT FOUND THEN
        available := coalesce(v_settled.balance - v_settled.held, 0);
    END IF;
END
$$
