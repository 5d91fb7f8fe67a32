-- What a write function that changes a hold answers (reserve_credits, release_hold): its
-- outcome, the hold (hold_*), and the figures of a refusal.
CREATE TYPE ledger_hold_answer AS (
    outcome text,
    hold_id bigint,
    hold_owner_id text,
    hold_operation text,
    hold_quantity integer,
    hold_amount integer,
    hold_status text,
    hold_nonce text,
    hold_metadata jsonb,
    hold_created_on timestamptz,
    hold_expires_at timestamptz,
    hold_capture_id bigint,
    current_balance integer,  -- what was available, for insufficient_credits
    required integer,         -- the whole amount, likewise
    entry_id bigint           -- the entry a nonce names, for nonce_conflict
)
