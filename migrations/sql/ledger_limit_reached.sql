-- Whether the owner already has an entry of the operation in the limit's current period,
-- and when the operation is allowed again (NULL for never). Checked before the balance lock,
-- so a refusal writes nothing; entries_owner_limit_key settles two writers that race past it.
CREATE FUNCTION ledger_limit_reached(
    p_owner_id text, p_operation text, p_limit text,
    OUT reached boolean, OUT retry_after timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    v_limit_key text := ledger_limit_key(p_limit, clock_timestamp());
BEGIN
    reached := v_limit_key IS NOT NULL AND EXISTS (
        SELECT FROM entries e
         WHERE e.owner_id = p_owner_id AND e.operation = p_operation
           AND e.limit_key = v_limit_key);
    IF reached AND p_limit = 'utc_day' THEN
        retry_after := (date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')
                        + interval '1 day') AT TIME ZONE 'UTC';
    END IF;
END
$$
