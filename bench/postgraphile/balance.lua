-- Balance reads against PostGraphile, the same load as bench/balance.lua: POST /graphql with
-- variables, BENCH_BATCH owner ids per request drawn at random from BENCH_OWNERS.
-- BENCH_BATCH=1: `balanceByOwnerId`, PostGraphile's primary-key lookup on balances.
-- BENCH_BATCH>1: one `balancesByOwnerIdsList` field (setup.sql's balances_by_owner_ids()),
-- ONE SQL query per request. Aliased `balanceByOwnerId` fields, the alternative, run one SQL
-- query per alias: 50 of them served about a seventh of the rate (~95 vs ~650 req/s, two
-- workers on two cores).
-- Environment: BENCH_OWNERS (default 10000), BENCH_BATCH (default 1), BENCH_PATH.
local owners = tonumber(os.getenv("BENCH_OWNERS") or "10000")
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/graphql"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local ids = {}
  for i = 1, batch do
    ids[i] = '"owner-' .. math.random(1, owners) .. '"'
  end
  local body
  if batch == 1 then
    body = '{"query":"query($o: String!) { balanceByOwnerId(ownerId: $o) { balance lastUpdated } }",'
      .. '"variables":{"o":' .. ids[1] .. '}}'
  else
    body = '{"query":"query($o: [String!]!) { balancesByOwnerIdsList(ownerIds: $o) '
      .. '{ ownerId balance } }","variables":{"o":[' .. table.concat(ids, ",") .. ']}}'
  end
  return wrk.format(nil, nil, nil, body)
end
