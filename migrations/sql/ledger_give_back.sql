-- Under the owner's balance lock, for the refund p_refund_id of the spend p_original_id:
-- gives the credits the spend took from grants back to each of them (grant_uses of the
-- refund, credits < 0), once the move has added them to balances.expiring.
CREATE FUNCTION ledger_give_back(
    p_owner_id text, p_original_id bigint, p_refund_id bigint, p_at timestamptz
) RETURNS void LANGUAGE sql AS $$
    WITH taken AS (
        SELECT u.grant_id, u.expires_at, sum(u.credits)::integer AS credits
          FROM grant_uses u
         WHERE u.owner_id = p_owner_id AND u.entry_id = p_original_id
         GROUP BY u.grant_id, u.expires_at),
    recorded AS (
        INSERT INTO grant_uses (owner_id, grant_id, entry_id, credits, taken_on, moved_on,
                                expires_at)
        SELECT p_owner_id, t.grant_id, p_refund_id, -t.credits, p_at, p_at, t.expires_at
          FROM taken t)
    UPDATE grants g SET remaining = g.remaining + t.credits
      FROM taken t
     WHERE g.owner_id = p_owner_id AND g.entry_id = t.grant_id
$$
