-- Balance reads as a client sends them: POST /graphql with variables. BENCH_BATCH owner
-- ids per request (1: a single `balance`; more: one `balances` list), drawn at random from
-- BENCH_OWNERS. Environment as in create_entry.lua.
local owners = tonumber(os.getenv("BENCH_OWNERS") or "10000")
local batch = tonumber(os.getenv("BENCH_BATCH") or "1")
local shape = os.getenv("BENCH_SHAPE") or "graphql"

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/graphql"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
if os.getenv("BENCH_POSITION") then  -- a write's position, sent back (read-your-writes)
  wrk.headers["X-Ledger-Position"] = os.getenv("BENCH_POSITION")
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local ids = {}
  for i = 1, batch do
    ids[i] = '"owner-' .. math.random(1, owners) .. '"'
  end
  local body
  if shape == "bare" then
    body = '{"ownerIds":[' .. table.concat(ids, ",") .. ']}'
  elseif batch == 1 then
    body = '{"query":"query($o: ID!) { balance(ownerId: $o) { balance lastUpdated } }",'
      .. '"variables":{"o":' .. ids[1] .. '}}'
  else
    body = '{"query":"query($o: [ID!]!) { balances(ownerIds: $o) { ownerId balance } }",'
      .. '"variables":{"o":[' .. table.concat(ids, ",") .. ']}}'
  end
  return wrk.format(nil, nil, nil, body)
end
