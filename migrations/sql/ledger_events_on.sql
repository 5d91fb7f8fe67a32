-- Whether the app has a webhook (ledger_settings, set by the serving processes at start):
-- without one, the write functions write no event at all, so they ask this first.
CREATE FUNCTION ledger_events_on() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT s.webhooks FROM ledger_settings s
$$
