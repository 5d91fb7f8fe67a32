-- The operation's amount, limit and lifetime (NULL: its credits never expire) in force now, read under the rules' lock held shared
-- until the write commits (see ledger_rules_lock).
CREATE FUNCTION ledger_rule_in_force(
    p_operation text, OUT rule_amount integer, OUT rule_limit text, OUT rule_lifetime interval
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(ledger_rules_lock());
    SELECT r.amount, r.limit_kind, r.lifetime INTO rule_amount, rule_limit, rule_lifetime
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
