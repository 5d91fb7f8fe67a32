-- The credits a spend entry (p_entry_id) or a hold (p_hold_id) took from grants, net of what
-- was given back: 0 for the common spend or hold, which took none. What a refund of that
-- spend, or the hold's end, gives back to them.
CREATE FUNCTION ledger_uses(p_owner_id text, p_entry_id bigint, p_hold_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(u.credits), 0)::integer FROM grant_uses u
             WHERE u.owner_id = p_owner_id
               AND (u.entry_id = p_entry_id OR u.hold_id = p_hold_id));
END
$$
