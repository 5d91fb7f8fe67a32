-- balances_held_within_balance as one CHECK (revision 0011): no figure below 0, and what
-- holds reserve plus what grants have left never above the balance, so that what never
-- expires, and what is available, is never below 0. One PL/pgSQL call rather than four
-- expressions to prepare for every write (see ledger_entry_is_well_formed). CREATE OR
-- REPLACE: the constraint depends on it.
CREATE OR REPLACE FUNCTION ledger_balance_is_within_bounds(
    p_balance integer, p_held integer, p_expiring integer
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_balance >= 0 AND p_held >= 0 AND p_expiring >= 0
       AND p_balance >= p_held::bigint + p_expiring;
END
$$
