-- For owners whose oldest pending events the caller claimed (ledger_claim_events), those
-- and up to p_limit - 1 of each owner's next pending events, in order, locked until the
-- caller's transaction ends: the caller sends them one after the other, so that an owner
-- writing fast gets more than one event per round trip to the database. Nobody else can
-- hold them: they are not their owner's oldest pending event while the caller holds that.
CREATE FUNCTION ledger_claim_following(p_owner_ids text[], p_limit integer)
RETURNS SETOF events LANGUAGE sql SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT f.* FROM unnest(p_owner_ids) AS o(owner_id)
     CROSS JOIN LATERAL (
           SELECT * FROM events e
            WHERE e.owner_id = o.owner_id AND e.status = 'pending'
            ORDER BY e.owner_seq, e.id
            LIMIT p_limit
              FOR UPDATE) f
$$
