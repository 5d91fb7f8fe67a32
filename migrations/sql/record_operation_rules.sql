-- Records the declared rules where they differ from those recorded (see
-- ledger_rule_changes) and answers how many operations changed; only `graphql-ledger
-- migrate` calls it, the serving role may not. A first rule applies from '-infinity', to
-- the history written before rules were recorded. A change waits for the writes in flight
-- and holds new ones until it commits (ledger_rules_lock, exclusively), so a new rule's
-- valid_from follows every entry written under the old one; the usual call, which changes
-- nothing, holds up no write.
CREATE FUNCTION record_operation_rules(
    p_operations text[], p_amounts integer[], p_limits text[],
    p_lifetimes interval[]
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_changed integer;
BEGIN
    IF NOT EXISTS (SELECT FROM ledger_rule_changes(p_operations, p_amounts, p_limits, p_lifetimes)) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(ledger_rules_lock());
    INSERT INTO operation_rules (operation, amount, limit_kind, lifetime, valid_from)
    SELECT c.operation, c.amount, c.limit_kind, c.lifetime,
           CASE WHEN c.first THEN '-infinity'::timestamptz ELSE clock_timestamp() END
      FROM ledger_rule_changes(p_operations, p_amounts, p_limits, p_lifetimes) c;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    RETURN v_changed;
END
$$
