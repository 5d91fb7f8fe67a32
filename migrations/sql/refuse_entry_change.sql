-- The trigger behind entries_are_append_only: UPDATE, DELETE and TRUNCATE on entries are
-- refused for every role, the owner's included. CREATE OR REPLACE: a trigger depends on it
-- (0001 creates it).
CREATE OR REPLACE FUNCTION refuse_entry_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
