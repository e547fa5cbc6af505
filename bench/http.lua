-- wrk script for bench/http.py: varied requests, answers counted by status.
-- Arguments after `--`: MODE (post | get), FILE (one JSON ticket body, or one ticket id, per
-- line), API_KEY. POST sends the bodies in turn to /tickets; GET asks for /tickets/{id}.
-- At the end it prints one JSON line: requests, duration, latency percentiles (µs), statuses,
-- and wrk's socket errors.

local items, mode, next_item = {}, "post", 1
counts = {}  -- global: `done` reads each thread's copy with thread:get
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  for line in io.lines(args[2]) do
    if #line > 0 then table.insert(items, line) end
  end
  wrk.headers["X-API-Key"] = args[3]
  if mode == "post" then
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
  end
  -- Each thread starts somewhere else in the list, so that threads do not send in step.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  next_item = math.random(#items)
end

function request()
  local item = items[next_item]
  next_item = next_item % #items + 1
  if mode == "post" then
    return wrk.format(nil, "/tickets", nil, item)
  end
  return wrk.format("GET", "/tickets/" .. item)
end

function response(status, headers, body)
  local key = tostring(status)
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do
    table.insert(parts, string.format('"%s": %d', status, n))
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "statuses": {%s}, "socket_errors": {"connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout))
end
