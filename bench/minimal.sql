-- The independent references' ledger (bench/independent.py, PostGraphile over schema
-- `minimal`, pgbench): the minimal ledger transaction and nothing of the product's. An entry
-- table and a balance table, a balance that may not go negative, idempotency by (owner,
-- nonce), and one function that inserts the entry and upserts the balance. No rules, holds,
-- grants, limits, events or NOTIFY: the references measure what a bare ledger costs, so
-- that the benchmark shows what the product's guarantees and its Python cost on top.
-- Applied by bench/run.py to the benchmark's database; one statement (a DO block).
DO $minimal$
BEGIN
    CREATE SCHEMA IF NOT EXISTS minimal;
    CREATE TABLE IF NOT EXISTS minimal.balances (
        owner_id     text        PRIMARY KEY,
        balance      integer     NOT NULL CHECK (balance >= 0),
        last_updated timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS minimal.entries (
        owner_id      text        NOT NULL,
        id            bigint      GENERATED ALWAYS AS IDENTITY,
        amount        integer     NOT NULL,
        balance_after integer     NOT NULL,
        nonce         text        NOT NULL,
        created_on    timestamptz NOT NULL,
        PRIMARY KEY (owner_id, id),
        UNIQUE (owner_id, nonce)
    );
    DROP TYPE IF EXISTS minimal.entry_answer CASCADE;
    CREATE TYPE minimal.entry_answer AS (
        outcome text, entry_id bigint, entry_balance_after integer
    );
    -- The same shape as the ledger's create_entry() for PostGraphile's createEntry
    -- mutation (its lua script is shared); CREDIT_ADD adds 10, anything else takes 1.
    CREATE OR REPLACE FUNCTION minimal.create_entry(
        p_owner_id text, p_operation text, p_nonce text
    ) RETURNS minimal.entry_answer LANGUAGE sql VOLATILE AS $$
        WITH moved AS (
            INSERT INTO minimal.balances AS b (owner_id, balance, last_updated)
            VALUES (p_owner_id, CASE p_operation WHEN 'CREDIT_ADD' THEN 10 ELSE -1 END,
                    clock_timestamp())
            ON CONFLICT (owner_id) DO UPDATE
               SET balance = b.balance + excluded.balance, last_updated = excluded.last_updated
            RETURNING b.owner_id, b.balance, b.last_updated,
                      CASE p_operation WHEN 'CREDIT_ADD' THEN 10 ELSE -1 END AS amount),
        written AS (
            INSERT INTO minimal.entries (owner_id, amount, balance_after, nonce, created_on)
            SELECT owner_id, amount, balance, p_nonce, last_updated FROM moved
            RETURNING id, balance_after)
        SELECT ROW('created', id, balance_after)::minimal.entry_answer FROM written
    $$;
    -- PostGraphile's batch read, as bench/postgraphile/setup.sql gives the ledger's tables.
    CREATE OR REPLACE FUNCTION minimal.balances_by_owner_ids(owner_ids text[])
        RETURNS SETOF minimal.balances LANGUAGE sql STABLE AS $$
        SELECT b.* FROM minimal.balances b WHERE b.owner_id = ANY (owner_ids)
    $$;
    COMMENT ON FUNCTION minimal.balances_by_owner_ids(text[]) IS
        E'@simpleCollections only\nBalances of the given owners.';
    INSERT INTO minimal.balances (owner_id, balance, last_updated)
    SELECT 'owner-' || g, 10, clock_timestamp() FROM generate_series(1, 10000) g
    ON CONFLICT DO NOTHING;
END
$minimal$;
