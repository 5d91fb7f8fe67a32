-- createEntry as a client sends it: POST /graphql, a JSON body with variables, a unique
-- nonce per request. OWNERS owners chosen at random (1 = one hot owner).
-- Environment: BENCH_TOKEN (service token), BENCH_OWNERS, BENCH_PATH (default /graphql),
-- BENCH_SHAPE ("graphql" or "bare": the bare endpoint takes the input object itself),
-- BENCH_OPERATION (default CREDIT_ADD), BENCH_OWNER_PREFIX (default "owner-").
local owners = tonumber(os.getenv("BENCH_OWNERS") or "10000")
local operation = os.getenv("BENCH_OPERATION") or "CREDIT_ADD"
local owner_prefix = os.getenv("BENCH_OWNER_PREFIX") or "owner-"
local shape = os.getenv("BENCH_SHAPE") or "graphql"
local counter = 0
local threads = 0

wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/graphql"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local query = "mutation($input: CreateEntryInput!) { createEntry(input: $input) { __typename "
  .. "... on LedgerEntry { id balanceAfter } ... on LedgerError { code } } }"

-- Each thread's nonces start with the run's clock and the thread's number: unique across
-- threads and across runs on the same database.
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("%d-%d-", os.time(), threads))
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  counter = counter + 1
  local owner = owner_prefix .. math.random(1, owners)
  local input = string.format(
    '{"ownerId":"%s","operation":"%s","nonce":"%s%d"}', owner, operation, prefix, counter)
  local body
  if shape == "bare" then
    body = input
  else
    body = '{"query":"' .. query .. '","variables":{"input":' .. input .. '}}'
  end
  return wrk.format(nil, nil, nil, body)
end
