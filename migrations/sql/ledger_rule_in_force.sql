-- The operation's amount and limit in force now, read under the rules' lock held shared
-- until the write commits (see ledger_rules_lock).
CREATE FUNCTION ledger_rule_in_force(
    p_operation text, OUT rule_amount integer, OUT rule_limit text
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(ledger_rules_lock());
    SELECT r.amount, r.limit_kind INTO rule_amount, rule_limit
      FROM operation_rules r
     WHERE r.operation = p_operation AND r.valid_from <= clock_timestamp()
     ORDER BY r.valid_from DESC
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % has no rules: run graphql-ledger migrate', p_operation
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$
