-- The one place that gives the key of the rules' advisory lock: 0x72756C6573, "rules" in
-- ASCII. Writes hold it shared (ledger_rule_in_force) and record_operation_rules holds it
-- exclusively, so a rule change takes effect between writes: every entry carries the rule
-- in force at its created_on, which `graphql-ledger verify` checks.
CREATE FUNCTION ledger_rules_lock() RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 491596309875::bigint
$$
