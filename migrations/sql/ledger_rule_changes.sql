-- The declared rules (three parallel arrays: operation, amount, limit kind) that differ
-- from the newest recorded rule of their operation; first says the operation has none yet.
CREATE FUNCTION ledger_rule_changes(
    p_operations text[], p_amounts integer[], p_limits text[]
) RETURNS TABLE (operation text, amount integer, limit_kind text, first boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.operation, t.amount, t.limit_kind, r.operation IS NULL
      FROM unnest(p_operations, p_amounts, p_limits) AS t(operation, amount, limit_kind)
      LEFT JOIN LATERAL (
           SELECT r.operation, r.amount, r.limit_kind FROM operation_rules r
            WHERE r.operation = t.operation
            ORDER BY r.valid_from DESC
            LIMIT 1) r ON true
     WHERE r.operation IS NULL OR r.amount <> t.amount
        OR r.limit_kind IS DISTINCT FROM t.limit_kind
$$
