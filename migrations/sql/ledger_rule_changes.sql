-- The declared rules (parallel arrays: operation, amount, limit kind, lifetime) that differ
-- from the newest recorded rule of their operation; first says the operation has none yet.
CREATE FUNCTION ledger_rule_changes(
    p_operations text[], p_amounts integer[], p_limits text[], p_lifetimes interval[]
) RETURNS TABLE (operation text, amount integer, limit_kind text, lifetime interval,
               first boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.operation, t.amount, t.limit_kind, t.lifetime, r.operation IS NULL
      FROM unnest(p_operations, p_amounts, p_limits, p_lifetimes)
           AS t(operation, amount, limit_kind, lifetime)
      LEFT JOIN LATERAL (
           SELECT r.operation, r.amount, r.limit_kind, r.lifetime FROM operation_rules r
            WHERE r.operation = t.operation
            ORDER BY r.valid_from DESC
            LIMIT 1) r ON true
     WHERE r.operation IS NULL OR r.amount <> t.amount
        OR r.limit_kind IS DISTINCT FROM t.limit_kind OR r.lifetime IS DISTINCT FROM t.lifetime
$$
