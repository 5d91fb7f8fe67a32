-- An instant as the GraphQL API writes a DateTime (ISO 8601 in UTC), whatever the session's
-- TimeZone: events carry the API's own format.
CREATE FUNCTION ledger_iso(p_at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
$$
