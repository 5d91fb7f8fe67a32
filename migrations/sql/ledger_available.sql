-- Locks the owner's balance row and answers its balance and what its OPEN holds reserve
-- now (NULLs when the owner has no balance row), writing nothing: a write checks what is
-- available with it before it changes anything, so that a refusal writes nothing.
CREATE FUNCTION ledger_available(
    p_owner_id text, OUT balance integer, OUT held integer, OUT last_updated timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    v_held_until timestamptz;
BEGIN
    SELECT b.balance, b.held, b.held_until, b.last_updated
      INTO balance, held, v_held_until, last_updated
      FROM balances b WHERE b.owner_id = p_owner_id FOR UPDATE;
    IF FOUND AND held > 0 AND v_held_until <= clock_timestamp() THEN
        held := ledger_held(p_owner_id, clock_timestamp());
    END IF;
END
$$
