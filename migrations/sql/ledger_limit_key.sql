-- The period an entry of a limited operation written at p_at counts against: 'once', or
-- its UTC date; NULL for an operation without a limit.
CREATE FUNCTION ledger_limit_key(p_limit text, p_at timestamptz)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE p_limit
        WHEN 'once' THEN 'once'
        WHEN 'utc_day' THEN to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
    END
$$
