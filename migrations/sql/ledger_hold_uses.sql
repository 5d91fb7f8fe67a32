-- The credits OPEN hold p_hold_id holds of grants (0 for the common hold, which took none).
CREATE FUNCTION ledger_hold_uses(p_owner_id text, p_hold_id bigint)
RETURNS integer LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT coalesce(sum(u.credits), 0)::integer FROM grant_uses u
     WHERE u.owner_id = p_owner_id AND u.hold_id = p_hold_id);
END
$$
