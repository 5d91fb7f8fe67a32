-- The credits spend entry p_entry_id took from grants (0 for the common spend, which took
-- none): what its refund gives back to them.
CREATE FUNCTION ledger_entry_uses(p_owner_id text, p_entry_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(u.credits), 0)::integer FROM grant_uses u
     WHERE u.owner_id = p_owner_id AND u.entry_id = p_entry_id);
END
$$
