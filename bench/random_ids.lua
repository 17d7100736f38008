-- wrk script: GET <prefix><random id in 1..max_id>; done() prints one JSON line of results.
--   wrk -s random_ids.lua URL -- /users/ 10000 [window_start window_end]
-- The window is in CLOCK_MONOTONIC seconds (Python's time.monotonic() on Linux): only
-- responses arriving inside it count as the measured ones, so a run can warm up and
-- measure on the same connections without the ramp of fresh ones.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local prefix, max_id = "/users/", 10000
local window_start, window_end = 0, math.huge
local threads = {}
-- per thread (each wrk thread has its own Lua state)
sent, in_window, bad_in_window, last_answer = 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[1] then prefix = args[1] end
  if args[2] then max_id = tonumber(args[2]) end
  if args[3] then window_start = tonumber(args[3]) end
  if args[4] then window_end = tonumber(args[4]) end
  -- seed each thread differently: from its own table address
  math.randomseed(os.time() + tonumber(string.match(tostring({}), "0x(%x+)") or "0", 16) % 100000)
end

function request()
  sent = sent + 1
  return wrk.format("GET", prefix .. math.random(1, max_id))
end

function response(status, headers, body)
  local t = now()
  last_answer = t
  if t >= window_start and t < window_end then
    in_window = in_window + 1
    if status >= 400 then bad_in_window = bad_in_window + 1 end
  end
end

local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return 0 end
  return x
end

local function total(name)
  local sum = 0
  for _, thread in ipairs(threads) do sum = sum + (thread:get(name) or 0) end
  return sum
end

local function latest(name)
  local found = 0
  for _, thread in ipairs(threads) do found = math.max(found, thread:get(name) or 0) end
  return found
end

function done(summary, latency, requests)
  local e = summary.errors
  local n = summary.requests
  local p50, p90, p99, mean, max = 0, 0, 0, 0, 0
  if n > 0 then
    p50, p90, p99 = latency:percentile(50), latency:percentile(90), latency:percentile(99)
    mean, max = num(latency.mean), latency.max
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "sent": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}, ' ..
    '"window": {"requests": %d, "status_errors": %d, "last_answer": %.6f}}\n',
    n, total("sent"), summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    p50, p90, p99, mean, max, total("in_window"), total("bad_in_window"),
    latest("last_answer")))
end
