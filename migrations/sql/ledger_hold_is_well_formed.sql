-- holds_are_well_formed, the shape of a hold as one CHECK (revision 0011): 1 to 1,000,000
-- units of a negative amount, metadata an object, expiring after it was made, one of the
-- four statuses, ended unless open and captured only with its capture. One PL/pgSQL call
-- rather than eight expressions to prepare for every write (see
-- ledger_entry_is_well_formed). CREATE OR REPLACE: the constraint depends on it.
CREATE OR REPLACE FUNCTION ledger_hold_is_well_formed(
    p_quantity integer, p_amount integer, p_metadata jsonb, p_created_on timestamptz,
    p_expires_at timestamptz, p_status text, p_ended_on timestamptz, p_capture_id bigint
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_quantity BETWEEN 1 AND 1000000
       AND p_amount < 0
       AND (p_metadata IS NULL OR jsonb_typeof(p_metadata) = 'object')
       AND p_expires_at > p_created_on
       AND p_status IN ('open', 'captured', 'released', 'expired')
       AND (p_status = 'open') = (p_ended_on IS NULL)
       AND (p_status = 'captured') = (p_capture_id IS NOT NULL);
END
$$
