-- Locks the owner's balance row, books what has lapsed by now (ledger_book_expiries: the
-- ledger's own writes, due before any write of the owner), and answers its balance, what
-- its OPEN holds reserve and `at`, the instant the caller's write happens (never before the
-- owner's newest write); NULLs when the owner has no balance row. Writes nothing else: a
-- write checks what is available with it before it changes anything, so that a refusal
-- writes nothing of its own.
CREATE FUNCTION ledger_available(
    p_owner_id text, OUT balance integer, OUT held integer, OUT last_updated timestamptz,
    OUT at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    v_row balances;
BEGIN
    SELECT * INTO v_row FROM balances b WHERE b.owner_id = p_owner_id FOR UPDATE;
    at := greatest(clock_timestamp(), v_row.last_updated);
    IF v_row.expiring_until <= at THEN
        PERFORM ledger_book_expiries(p_owner_id, at);
        SELECT * INTO v_row FROM balances b WHERE b.owner_id = p_owner_id;
    END IF;
    balance := v_row.balance;
    held := v_row.held;
    last_updated := v_row.last_updated;
    IF held > 0 AND v_row.held_until <= at THEN
        held := ledger_held(p_owner_id, at);
    END IF;
END
$$
