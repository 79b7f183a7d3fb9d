-- wrk script for bench/webhook_ingest.py --poster wrk: POSTs pre-signed webhook deliveries, each
-- once, in order, over the connections of all threads. Reads WEBHOOK_BENCH_FILE: the path on
-- the first line, then one delivery per line, "<X-Hub-Signature-256 or ->\t<body>" (a body is
-- one line of JSON). Each thread takes every n-th line. Prints one JSON line at the end:
-- requests, requests/s, latency percentiles, statuses, and whether any delivery was sent twice.

local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local path, signatures, bodies, count = nil, {}, {}, 0
local next_index, wrapped = 1, 0
statuses, repeats = {}, 0

function init(args)
  local file = io.open(os.getenv("WEBHOOK_BENCH_FILE"), "r")
  path = file:read("*l")
  local line_no, nthreads = 0, tonumber(os.getenv("WEBHOOK_BENCH_THREADS"))
  for line in file:lines() do
    if line_no % nthreads == id then
      local signature, body = line:match("^([^\t]*)\t(.*)$")
      count = count + 1
      signatures[count], bodies[count] = signature, body
    end
    line_no = line_no + 1
  end
  file:close()
end

function request()
  if next_index > count then next_index, repeats = 1, repeats + 1 end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-Proto"] = "https",
    ["User-Agent"] = "facebookexternalua",
  }
  if signatures[next_index] ~= "-" then headers["X-Hub-Signature-256"] = signatures[next_index] end
  local body = bodies[next_index]
  next_index = next_index + 1
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local all_status, all_repeats = {}, 0
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do all_status[code] = (all_status[code] or 0) + n end
    all_repeats = all_repeats + thread:get("repeats")
  end
  local parts = {}
  for code, n in pairs(all_status) do table.insert(parts, string.format('"%d": %d', code, n)) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50": %.2f, "p99": %.2f, ' ..
    '"max": %.2f, "errors": %d, "statuses": {%s}, "repeats": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", "), all_repeats))
end
