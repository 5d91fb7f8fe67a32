-- createEntry against PostGraphile, the same load as bench/create_entry.lua: POST /graphql,
-- a JSON body with variables, CREDIT_ADD of 10 credits, a unique nonce per request,
-- BENCH_OWNERS owners chosen at random (1 = one hot owner). The mutation is PostGraphile's
-- for the ledger's create_entry() function, which takes the amount from operation_rules.
-- `outcome` plays the part of the ledger's
-- __typename/code ('created', 'replayed', ...).
-- Environment: BENCH_OWNERS (default 10000), BENCH_PATH (default /graphql), BENCH_RESULT
-- (the payload's field, named after the function's row type: ledgerEntryAnswer for the
-- ledger's create_entry(), entryAnswer for the independent minimal.create_entry()).
local owners = tonumber(os.getenv("BENCH_OWNERS") or "10000")
local counter = 0
local threads = 0

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/graphql"
wrk.headers["Content-Type"] = "application/json"

local query = "mutation($input: CreateEntryInput!) { createEntry(input: $input) { "
  .. (os.getenv("BENCH_RESULT") or "ledgerEntryAnswer")
  .. " { outcome entryId entryBalanceAfter } } }"

-- Each thread's nonces start with the run's clock and the thread's number: unique across
-- threads and across runs on the same database.
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("pg-%d-%d-", os.time(), threads))
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  counter = counter + 1
  local input = string.format(
    '{"pOwnerId":"owner-%d","pOperation":"CREDIT_ADD","pNonce":"%s%d"}',
    math.random(1, owners), prefix, counter)
  return wrk.format(nil, nil, nil,
    '{"query":"' .. query .. '","variables":{"input":' .. input .. '}}')
end
