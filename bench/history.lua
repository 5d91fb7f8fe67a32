-- A page of one owner's history as a client asks for it: POST /graphql with variables,
-- the page after BENCH_AFTER (a cursor; empty: the first page).
-- Environment: BENCH_TOKEN (service token), BENCH_OWNER, BENCH_AFTER.
wrk.method = "POST"
wrk.path = "/graphql"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local after = os.getenv("BENCH_AFTER") or ""
local variables = '{"o":"' .. os.getenv("BENCH_OWNER") .. '"'
  .. (after ~= "" and (',"a":"' .. after .. '"') or "") .. '}'
wrk.body = '{"query":"query($o: ID!, $a: String) { entries(ownerId: $o, first: 20, after: $a) '
  .. '{ edges { node { id amount balanceAfter createdOn } } pageInfo { hasNextPage } } }",'
  .. '"variables":' .. variables .. '}'
