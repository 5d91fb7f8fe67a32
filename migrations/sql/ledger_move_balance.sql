-- Locks the owner's balance row and moves it by p_amount: the row lock orders the owner's
-- writes. A credit creates the row if needed; a debit moves it only if it stays >= 0, and
-- otherwise answers NULLs. moved_on never runs backwards within an owner, even if the clock
-- does.
CREATE FUNCTION ledger_move_balance(
    p_owner_id text, p_amount integer, OUT new_balance integer, OUT moved_on timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    IF p_amount >= 0 THEN
        INSERT INTO balances AS b (owner_id, balance, last_updated)
        VALUES (p_owner_id, p_amount, clock_timestamp())
        ON CONFLICT (owner_id) DO UPDATE
            SET balance = b.balance + excluded.balance,
                last_updated = greatest(clock_timestamp(), b.last_updated)
        RETURNING b.balance, b.last_updated INTO new_balance, moved_on;
    ELSE
        UPDATE balances AS b
           SET balance = b.balance + p_amount,
               last_updated = greatest(clock_timestamp(), b.last_updated)
         WHERE b.owner_id = p_owner_id AND b.balance + p_amount >= 0
        RETURNING b.balance, b.last_updated INTO new_balance, moved_on;
    END IF;
END
$$
