-- wrk script of the benchmark suite (benchmarks/suite.py). Every column gets the same requests; only the
-- Authorization header differs where a column needs another token. Settings come from the environment:
--
--   BENCH_METHOD       GET (a small Prometheus-like query) or POST (a JSON push to /api/v1/push)
--   BENCH_BODY_BYTES   size of the POST body in bytes
--   BENCH_TOKEN        "Bearer <this>" on every request (empty: no Authorization header)
--   BENCH_TOKEN_FILE   instead of BENCH_TOKEN: a different token on every request. wrk thread k reads the file
--                      BENCH_TOKEN_FILE.k line by line, so threads never share a token; a thread that reaches
--                      the end of its file starts it again and counts a "wrap" (then tokens repeat)
--   BENCH_TENANTS      N: X-Scope-OrgID cycles through tenant-0 .. tenant-(N-1), request by request
--   BENCH_TENANT       with N <= 1: the one X-Scope-OrgID value (empty: no such header)
--
-- At the end it prints one line for the suite to parse:
--   SUITE-RESULT <requests> <duration µs> <p50 µs> <p99 µs> <non-2xx> <socket errors> <token wraps>

local method = os.getenv("BENCH_METHOD") or "GET"
local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "0")
local token = os.getenv("BENCH_TOKEN") or ""
local token_file = os.getenv("BENCH_TOKEN_FILE") or ""
local tenant_count = tonumber(os.getenv("BENCH_TENANTS") or "1")
local fixed_tenant = os.getenv("BENCH_TENANT") or ""

-- A JSON array of log records, padded with spaces to exactly `size` bytes.
local function push_body(size)
  local record = '{"ts":1700000000000,"level":"info","service":"checkout","msg":"order placed","took_ms":12},'
  local records = math.max(0, math.floor((size - 2) / #record))
  local body = "[" .. string.rep(record, records)
  if records > 0 then body = body:sub(1, -2) end  -- no comma after the last record
  return body .. string.rep(" ", size - 1 - #body) .. "]"
end

wrk.method = method
wrk.headers["User-Agent"] = "obsgw-suite"
if method == "POST" then
  wrk.path = "/api/v1/push"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = push_body(body_bytes)
else
  wrk.path = "/api/v1/query?query=up"
end
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
if tenant_count <= 1 and fixed_tenant ~= "" then wrk.headers["X-Scope-OrgID"] = fixed_tenant end

-- setup() runs in the main interpreter once per thread: give each thread its number, keep the handles.
local threads = {}
function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

local turn = 0
local function next_tenant()
  turn = turn % tenant_count + 1
  return "tenant-" .. (turn - 1)
end

local tokens  -- this thread's token file, opened on the first request (a slow init() would skew wrk's clock)
wraps = 0

local function next_token()
  if not tokens then tokens = assert(io.open(token_file .. "." .. thread_number, "r")) end
  local line = tokens:read("*l")
  if not line then
    wraps = wraps + 1
    tokens:seek("set", 0)
    line = tokens:read("*l")
  end
  return line
end

local preformatted = {}  -- with several tenants and one token: the N requests, formatted once

if token_file ~= "" then
  function request()
    wrk.headers["Authorization"] = "Bearer " .. next_token()
    if tenant_count > 1 then wrk.headers["X-Scope-OrgID"] = next_tenant() end
    return wrk.format()
  end
elseif tenant_count > 1 then
  function request()
    turn = turn % tenant_count + 1
    if not preformatted[turn] then
      wrk.headers["X-Scope-OrgID"] = "tenant-" .. (turn - 1)
      preformatted[turn] = wrk.format()
    end
    return preformatted[turn]
  end
end

function done(summary, latency, requests)
  local total_wraps = 0
  for _, thread in ipairs(threads) do total_wraps = total_wraps + (tonumber(thread:get("wraps")) or 0) end
  local e = summary.errors
  io.write(string.format("SUITE-RESULT %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout, total_wraps))
end
