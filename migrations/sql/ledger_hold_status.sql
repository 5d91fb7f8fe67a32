-- A hold's status as clients see it: an OPEN hold whose expires_at has passed is EXPIRED
-- from that instant, whether or not a write has settled it yet.
CREATE FUNCTION ledger_hold_status(p_status text, p_expires_at timestamptz, p_at timestamptz)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_status = 'open' AND p_expires_at <= p_at THEN 'expired'
           ELSE p_status END
$$
