-- entries_are_well_formed, the shape of an entry as one CHECK (revision 0011): a balanceAfter
-- never below 0; kind NULL (an operation's) or capture, refund or expiry, each with its link
-- and none other (a capture its hold, a refund its original, an expiry its grant, and only
-- an expiry has no nonce); quantity NULL (one unit) or 2 to 1,000,000; metadata an object;
-- an expiring entry is an operation's credit that expires after it was written.
-- PostgreSQL prepares each CHECK of a table for every statement that writes a row of it:
-- one PL/pgSQL call instead of nine expressions made each insert about 25 µs cheaper
-- (bench/README.md). CREATE OR REPLACE: the constraint depends on it.
CREATE OR REPLACE FUNCTION ledger_entry_is_well_formed(
    p_amount integer, p_balance_after integer, p_nonce text, p_created_on timestamptz,
    p_quantity integer, p_kind text, p_metadata jsonb, p_refund_of bigint, p_hold_id bigint,
    p_expires_at timestamptz, p_expiry_of bigint
) RETURNS boolean LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN p_balance_after >= 0
       AND (p_kind IS NULL OR p_kind IN ('capture', 'refund', 'expiry'))
       AND (p_quantity IS NULL OR p_quantity BETWEEN 2 AND 1000000)
       AND (p_metadata IS NULL OR jsonb_typeof(p_metadata) = 'object')
       AND (coalesce(p_kind, '') = 'capture') = (p_hold_id IS NOT NULL)
       AND (coalesce(p_kind, '') = 'refund') = (p_refund_of IS NOT NULL)
       AND (coalesce(p_kind, '') = 'expiry') = (p_expiry_of IS NOT NULL)
       AND (coalesce(p_kind, '') = 'expiry') = (p_nonce IS NULL)
       AND (p_expires_at IS NULL
            OR (p_kind IS NULL AND p_amount > 0 AND p_expires_at > p_created_on));
END
$$
