-- A hold's life as an AI backend drives it: reserveCredits before a job, then captureHold
-- of what it used, each a POST /graphql with variables. Each connection alternates: a
-- reserve (1 unit of CREDIT_SPEND, for an owner drawn from BENCH_OWNERS), then the capture
-- of the hold that reserve answered. A request is either; a hold's life is two.
-- Environment: BENCH_TOKEN (service token), BENCH_OWNERS.
local owners = tonumber(os.getenv("BENCH_OWNERS") or "10000")
local counter = 0
local threads = 0
local holds = {}

wrk.method = "POST"
wrk.path = "/graphql"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local reserve = "mutation($input: ReserveCreditsInput!) { reserveCredits(input: $input) { "
  .. "__typename ... on Hold { id } ... on LedgerError { code } } }"
local capture = "mutation($input: CaptureHoldInput!) { captureHold(input: $input) { "
  .. "__typename ... on LedgerEntry { id } ... on LedgerError { code } } }"

function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("h%d-%d-", os.time(), threads))
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local hold = table.remove(holds)
  if hold then
    return wrk.format(nil, nil, nil, '{"query":"' .. capture
      .. '","variables":{"input":{"holdId":"' .. hold .. '"}}}')
  end
  counter = counter + 1
  local input = string.format(
    '{"ownerId":"owner-%d","operation":"CREDIT_SPEND","nonce":"%s%d"}',
    math.random(1, owners), prefix, counter)
  return wrk.format(nil, nil, nil, '{"query":"' .. reserve .. '","variables":{"input":'
    .. input .. '}}')
end

function response(status, headers, body)
  local hold = body:match('"reserveCredits":{"__typename":"Hold","id":"(%d+)"')
  if hold then
    table.insert(holds, hold)
  end
end
