-- Locks the owner's balance row and moves it by p_amount: the row lock orders the owner's
-- writes. A credit creates the row if needed; p_to_grants of it go to grants (an expiring
-- credit's own, p_grant_expires its expires_at; or what a refund gives back to the grants
-- its original took from). A debit moves it only if what is available (the balance less
-- what open holds reserve) stays >= 0, and otherwise answers NULLs with `available`; it
-- takes from_grants credits from unexpired grants (the caller records which:
-- ledger_take_grants) and the rest from credits that never expire (p_pool_first: those first,
-- for the refund of a credit that never expires). moved_on never runs
-- backwards within an owner, even if the clock does; a balance past the integer range
-- answers NULLs with too_large.
--
-- The common write takes one statement: when the owner has no expiring credits and nothing
-- of theirs lapses yet (expiring_until NULL or ahead), and no hold is open, or none has
-- expired yet (held_until ahead), the balance row is exact. Otherwise the row is locked,
-- what has lapsed is booked first (ledger_available), what is available is computed, and
-- the owner's holds are settled only for a debit that goes ahead.
CREATE FUNCTION ledger_move_balance(
    p_owner_id text, p_amount integer, p_to_grants integer DEFAULT 0,
    p_grant_expires timestamptz DEFAULT NULL, p_pool_first boolean DEFAULT false,
    OUT new_balance integer, OUT moved_on timestamptz, OUT available integer,
    OUT too_large boolean, OUT held integer, OUT held_until timestamptz, OUT version bigint,
    OUT from_grants integer
) LANGUAGE plpgsql AS $$
DECLARE
    v_owner record;
BEGIN
    too_large := false;
    from_grants := 0;
    IF p_amount >= 0 AND p_to_grants = 0 THEN
        INSERT INTO balances AS b (owner_id, balance, last_updated, version)
        VALUES (p_owner_id, p_amount, clock_timestamp(), 1)
        ON CONFLICT (owner_id) DO UPDATE
            SET balance = b.balance + excluded.balance,
                last_updated = greatest(clock_timestamp(), b.last_updated),
                version = b.version + 1
            WHERE b.balance::bigint + excluded.balance <= 2147483647
              AND (b.expiring_until IS NULL OR b.expiring_until > clock_timestamp())
        RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
             INTO new_balance, moved_on, held, held_until, version;
        IF FOUND THEN
            RETURN;
        END IF;
    ELSIF p_amount < 0 THEN
        UPDATE balances AS b
           SET balance = b.balance + p_amount,
               last_updated = greatest(clock_timestamp(), b.last_updated),
               version = b.version + 1
         WHERE b.owner_id = p_owner_id AND b.balance + p_amount >= b.held
           AND b.expiring = 0
           AND (b.held = 0 OR b.held_until > clock_timestamp())
           AND (b.expiring_until IS NULL OR b.expiring_until > clock_timestamp())
        RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
             INTO new_balance, moved_on, held, held_until, version;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- Short of credits, grants to keep, something lapsed or a hold expired: book what has
    -- lapsed, decide on what is available now without writing more, and settle the holds
    -- only for a debit that goes ahead.
    SELECT * INTO v_owner FROM ledger_available(p_owner_id);
    IF p_amount < 0 THEN
        IF coalesce(v_owner.balance - v_owner.held, 0) + p_amount < 0 THEN
            available := coalesce(v_owner.balance - v_owner.held, 0);
            RETURN;
        END IF;
        PERFORM ledger_settle_holds(p_owner_id, v_owner.at);
        IF p_pool_first THEN  -- what never expires first: the refund of such a credit
            SELECT greatest(0, -p_amount - (b.balance - b.held - b.expiring)) INTO from_grants
              FROM balances b WHERE b.owner_id = p_owner_id;
        ELSE
            from_grants := least(-p_amount, ledger_grants_left(p_owner_id, v_owner.at));
        END IF;
    ELSIF coalesce(v_owner.balance, 0)::bigint + p_amount > 2147483647 THEN
        too_large := true;
        RETURN;
    END IF;
    IF p_amount < 0 THEN  -- the row exists; an INSERT would check its negative balance
        UPDATE balances AS b
           SET balance = b.balance + p_amount, expiring = b.expiring - from_grants,
               last_updated = v_owner.at, version = b.version + 1
         WHERE b.owner_id = p_owner_id
        RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
             INTO new_balance, moved_on, held, held_until, version;
        RETURN;
    END IF;
    INSERT INTO balances AS b (owner_id, balance, last_updated, version, expiring,
                               expiring_until)
    VALUES (p_owner_id, p_amount, v_owner.at, 1, p_to_grants, p_grant_expires)
    ON CONFLICT (owner_id) DO UPDATE
        SET balance = b.balance + p_amount,
            expiring = b.expiring + p_to_grants,
            expiring_until = least(b.expiring_until, p_grant_expires),
            last_updated = v_owner.at,
            version = b.version + 1
    RETURNING b.balance, b.last_updated, b.held, b.held_until, b.version
         INTO new_balance, moved_on, held, held_until, version;
END
$$
