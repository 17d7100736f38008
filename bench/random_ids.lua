-- wrk script: GET <prefix><random id in 1..max_id>; done() prints one JSON line of results.
-- usage: wrk -s random_ids.lua URL -- /users/ 10000
local prefix, max_id = "/users/", 10000
local threads = {}
sent = 0 -- per thread: requests generated (the last one per connection may be unanswered)

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[1] then prefix = args[1] end
  if args[2] then max_id = tonumber(args[2]) end
  -- each wrk thread has its own Lua state; seed each from its own table address
  math.randomseed(os.time() + tonumber(string.match(tostring({}), "0x(%x+)") or "0", 16) % 100000)
end

function request()
  sent = sent + 1
  return wrk.format("GET", prefix .. math.random(1, max_id))
end

local function num(x)
  if x ~= x or x == math.huge or x == -math.huge then return 0 end
  return x
end

function done(summary, latency, requests)
  local e = summary.errors
  local n = summary.requests
  local total_sent = 0
  for _, thread in ipairs(threads) do total_sent = total_sent + (thread:get("sent") or 0) end
  local p50, p90, p99, mean, max = 0, 0, 0, 0, 0
  if n > 0 then
    p50, p90, p99 = latency:percentile(50), latency:percentile(90), latency:percentile(99)
    mean, max = num(latency.mean), latency.max
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "sent": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "mean": %.1f, "max": %d}}\n',
    n, total_sent, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    p50, p90, p99, mean, max))
end
