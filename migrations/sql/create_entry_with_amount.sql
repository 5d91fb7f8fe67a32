-- The signature of the release before operation rules, create_entry(owner, operation,
-- amount, nonce, limit), kept for its processes while a rollout replaces them: their amount
-- and limit are ignored, the rules in force apply.
CREATE FUNCTION create_entry(
    p_owner_id text, p_operation text, p_amount integer, p_nonce text,
    p_limit text DEFAULT NULL,
    OUT outcome text, OUT entry_id bigint, OUT entry_operation text,
    OUT entry_amount integer, OUT entry_balance_after integer,
    OUT entry_created_on timestamptz, OUT current_balance integer,
    OUT retry_after timestamptz
) LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT c.outcome, c.entry_id, c.entry_operation, c.entry_amount,
           c.entry_balance_after, c.entry_created_on, c.current_balance, c.retry_after
      FROM create_entry(p_owner_id, p_operation, p_nonce) c
$$
