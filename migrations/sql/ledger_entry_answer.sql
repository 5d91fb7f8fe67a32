-- What a write function that books an entry answers (create_entry, capture_hold,
-- refund_entry): its outcome, the entry it wrote or found (entry_*), and the figures of a
-- refusal. One row type, so that every such function answers the same columns.
CREATE TYPE ledger_entry_answer AS (
    outcome text,
    entry_id bigint,
    entry_owner_id text,
    entry_operation text,
    entry_amount integer,
    entry_balance_after integer,
    entry_nonce text,
    entry_created_on timestamptz,
    entry_quantity integer,
    entry_kind text,
    entry_metadata jsonb,
    entry_refund_of bigint,
    current_balance integer,  -- what was available, for insufficient_credits
    required integer,         -- the whole amount the write needed, likewise
    retry_after timestamptz,  -- for limit_reached; NULL for never
    hold_id bigint,           -- the hold a nonce or a capture names
    reserved integer,         -- a hold's quantity, for invalid_quantity
    entry_expires_at timestamptz,
    entry_expiry_of bigint
)
