-- A healthai database at revision 0005, made by the release before 0006 (commit cddfa81:
-- its migrations, then its create_entry()), dumped with pg_dump --inserts --no-owner
-- --no-privileges. tests/test_serving_role.py upgrades it to head.


SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

CREATE FUNCTION public.create_entry(p_owner_id text, p_operation text, p_nonce text, OUT outcome text, OUT entry_id bigint, OUT entry_operation text, OUT entry_amount integer, OUT entry_balance_after integer, OUT entry_created_on timestamp with time zone, OUT current_balance integer, OUT retry_after timestamp with time zone, OUT required integer) RETURNS record
    LANGUAGE plpgsql
    AS $$
        DECLARE
            v_amount integer;
            v_limit text;
            v_limit_key text;
        BEGIN
            SELECT CASE WHEN e.operation = p_operation THEN 'replayed' ELSE 'nonce_conflict' END,
                   e.id, e.operation, e.amount, e.balance_after, e.created_on
              INTO outcome, entry_id, entry_operation, entry_amount, entry_balance_after,
                   entry_created_on
              FROM entries e
             WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce;
            IF FOUND THEN
                RETURN;
            END IF;

            -- Rule changes wait for writes in flight and writes wait for a rule change
            -- (the repository's register_rules holds this lock exclusively): so every
            -- entry carries the rule in force at its created_on, which verify checks.
            PERFORM pg_advisory_xact_lock_shared(491596309875);
            SELECT r.amount, r.limit_kind INTO v_amount, v_limit
              FROM operation_rules r
             WHERE r.operation = p_operation AND r.valid_from <= clock_timestamp()
             ORDER BY r.valid_from DESC
             LIMIT 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'operation % has no rules: start the app or run migrate',
                    p_operation USING ERRCODE = 'invalid_parameter_value';
            END IF;

            IF v_limit IS NOT NULL THEN
                v_limit_key := CASE v_limit
                    WHEN 'once' THEN 'once'
                    ELSE to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                END;
                PERFORM FROM entries e
                  WHERE e.owner_id = p_owner_id AND e.operation = p_operation
                    AND e.limit_key = v_limit_key;
                IF FOUND THEN
                    outcome := 'limit_reached';
                    IF v_limit = 'utc_day' THEN
                        retry_after := (date_trunc('day', clock_timestamp() AT TIME ZONE 'UTC')
                                        + interval '1 day') AT TIME ZONE 'UTC';
                    END IF;
                    RETURN;
                END IF;
            END IF;

            IF v_amount >= 0 THEN
                INSERT INTO balances AS b (owner_id, balance, last_updated)
                VALUES (p_owner_id, v_amount, clock_timestamp())
                ON CONFLICT (owner_id) DO UPDATE
                    SET balance = b.balance + excluded.balance,
                        last_updated = greatest(clock_timestamp(), b.last_updated)
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
            ELSE
                UPDATE balances AS b
                   SET balance = b.balance + v_amount,
                       last_updated = greatest(clock_timestamp(), b.last_updated)
                 WHERE b.owner_id = p_owner_id AND b.balance + v_amount >= 0
                RETURNING b.balance, b.last_updated INTO current_balance, entry_created_on;
                IF NOT FOUND THEN
                    PERFORM FROM entries e WHERE e.owner_id = p_owner_id AND e.nonce = p_nonce;
                    IF FOUND THEN
                        RAISE unique_violation USING CONSTRAINT = 'entries_owner_nonce_key',
                            MESSAGE = 'a copy of this entry committed concurrently';
                    END IF;
                    outcome := 'insufficient_credits';
                    required := -v_amount;
                    SELECT coalesce(max(b.balance), 0) INTO current_balance
                      FROM balances b WHERE b.owner_id = p_owner_id;
                    RETURN;
                END IF;
            END IF;

            -- The period is that of the entry's own created_on, taken under the lock.
            IF v_limit = 'utc_day' THEN
                v_limit_key := to_char(entry_created_on AT TIME ZONE 'UTC', 'YYYY-MM-DD');
            END IF;
            INSERT INTO entries (owner_id, operation, amount, balance_after, nonce, created_on,
                                 limit_key)
            VALUES (p_owner_id, p_operation, v_amount, current_balance, p_nonce,
                    entry_created_on, v_limit_key)
            RETURNING id INTO entry_id;
            PERFORM pg_notify('ledger_balances', json_build_object(
                'owner_id', p_owner_id, 'balance', current_balance, 'entry_id', entry_id,
                'created_on_us', (extract(epoch FROM entry_created_on) * 1000000)::bigint
            )::text);
            outcome := 'created';
            entry_operation := p_operation;
            entry_amount := v_amount;
            entry_balance_after := current_balance;
        END
        $$;

CREATE FUNCTION public.create_entry(p_owner_id text, p_operation text, p_amount integer, p_nonce text, p_limit text DEFAULT NULL::text, OUT outcome text, OUT entry_id bigint, OUT entry_operation text, OUT entry_amount integer, OUT entry_balance_after integer, OUT entry_created_on timestamp with time zone, OUT current_balance integer, OUT retry_after timestamp with time zone) RETURNS record
    LANGUAGE sql
    AS $$
            SELECT c.outcome, c.entry_id, c.entry_operation, c.entry_amount,
                   c.entry_balance_after, c.entry_created_on, c.current_balance, c.retry_after
              FROM create_entry(p_owner_id, p_operation, p_nonce) c
        $$;

CREATE FUNCTION public.refuse_entry_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
        BEGIN
            RAISE EXCEPTION 'ledger entries are append-only: % is refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);

CREATE TABLE public.balances (
    owner_id text NOT NULL,
    balance integer NOT NULL,
    last_updated timestamp with time zone NOT NULL,
    CONSTRAINT balances_balance_check CHECK ((balance >= 0))
);

CREATE TABLE public.entries (
    owner_id text NOT NULL,
    id bigint NOT NULL,
    operation text NOT NULL,
    amount integer NOT NULL,
    balance_after integer NOT NULL,
    nonce text NOT NULL,
    created_on timestamp with time zone NOT NULL,
    limit_key text,
    CONSTRAINT entries_balance_after_check CHECK ((balance_after >= 0))
);

ALTER TABLE public.entries ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.entries_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE public.operation_rules (
    operation text NOT NULL,
    amount integer NOT NULL,
    limit_kind text,
    valid_from timestamp with time zone NOT NULL,
    CONSTRAINT operation_rules_limit_kind_check CHECK ((limit_kind = ANY (ARRAY['once'::text, 'utc_day'::text])))
);

INSERT INTO public.alembic_version VALUES ('0005');

INSERT INTO public.balances VALUES ('alice', 12, '2026-12-01 20:11:15.537705+00');
INSERT INTO public.balances VALUES ('bob', 6, '2026-12-01 20:11:15.538555+00');

INSERT INTO public.entries OVERRIDING SYSTEM VALUE VALUES ('alice', 1, 'CREDIT_ADD', 10, 10, 'a1', '2026-12-01 20:11:15.53575+00', NULL);
INSERT INTO public.entries OVERRIDING SYSTEM VALUE VALUES ('alice', 2, 'CREDIT_SPEND', -1, 9, 'a2', '2026-12-01 20:11:15.537247+00', NULL);
INSERT INTO public.entries OVERRIDING SYSTEM VALUE VALUES ('alice', 3, 'SIGNUP_CREDIT', 3, 12, 'a3', '2026-12-01 20:11:15.537705+00', 'once');
INSERT INTO public.entries OVERRIDING SYSTEM VALUE VALUES ('bob', 4, 'DAILY_REWARD', 1, 1, 'b1', '2026-12-01 20:11:15.53817+00', '2026-12-01');
INSERT INTO public.entries OVERRIDING SYSTEM VALUE VALUES ('bob', 5, 'CONTENT_CREATION', 5, 6, 'b2', '2026-12-01 20:11:15.538555+00', NULL);

INSERT INTO public.operation_rules VALUES ('CREDIT_ADD', 10, NULL, '-infinity');
INSERT INTO public.operation_rules VALUES ('CREDIT_SPEND', -1, NULL, '-infinity');
INSERT INTO public.operation_rules VALUES ('SIGNUP_CREDIT', 3, 'once', '-infinity');
INSERT INTO public.operation_rules VALUES ('DAILY_REWARD', 1, 'utc_day', '-infinity');
INSERT INTO public.operation_rules VALUES ('CONTENT_CREATION', 5, NULL, '-infinity');
INSERT INTO public.operation_rules VALUES ('CONTENT_ACCESS', -2, NULL, '-infinity');

SELECT pg_catalog.setval('public.entries_id_seq', 5, true);

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);

ALTER TABLE ONLY public.balances
    ADD CONSTRAINT balances_pkey PRIMARY KEY (owner_id);

ALTER TABLE ONLY public.entries
    ADD CONSTRAINT entries_owner_nonce_key UNIQUE (owner_id, nonce);

ALTER TABLE ONLY public.entries
    ADD CONSTRAINT entries_pkey PRIMARY KEY (owner_id, created_on, id);

ALTER TABLE ONLY public.operation_rules
    ADD CONSTRAINT operation_rules_pkey PRIMARY KEY (operation, valid_from);

CREATE UNIQUE INDEX entries_owner_limit_key ON public.entries USING btree (owner_id, operation, limit_key) WHERE (limit_key IS NOT NULL);

CREATE TRIGGER entries_are_append_only BEFORE DELETE OR UPDATE OR TRUNCATE ON public.entries FOR EACH STATEMENT EXECUTE FUNCTION public.refuse_entry_change();


