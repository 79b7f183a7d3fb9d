-- wrk script for bench/api_load.py: GET /api/v1/chats/ and POST a message to a chat, alternating,
-- each request with one of the clients' API keys (round robin) and a fresh Idempotency-Key (unique per run).
-- Reads API_BENCH_FILE (one "key <secret>" or "chat <code>" per line). MODE=get|post|mix.
-- Prints one JSON line at the end: requests/s, latency percentiles, statuses, server time.

local keys, chats = {}, {}
local file = io.open(os.getenv("API_BENCH_FILE"), "r")
for line in file:lines() do
  local kind, value = line:match("^(%a+) (.+)$")
  if kind == "key" then table.insert(keys, value) elseif kind == "chat" then table.insert(chats, value) end
end
file:close()
local mode = os.getenv("MODE") or "mix"
-- Each wrk run's keys are its own (api_load.py sets API_BENCH_RUN per run): a key sent again
-- in a later run, or in the warm-up, is a replay of the stored answer, not a send.
local run = os.getenv("API_BENCH_RUN") or tostring(os.time())

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

counter, statuses, server_ms, replayed = 0, {}, {}, 0
local body = '{"type": "text", "text": {"body": "Sua consulta esta confirmada."}}'

function init(args)
  math.randomseed(id * 7919)
  counter = id * 1000
end

function request()
  counter = counter + 1
  local key = keys[(counter % #keys) + 1]
  local headers = { ["Authorization"] = "Bearer " .. key }
  local post = mode == "post" or (mode == "mix" and counter % 2 == 1)
  if post then
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = string.format("%s-%d-%d", run, id, counter)
    return wrk.format("POST", "/api/v1/chats/" .. chats[math.random(#chats)] .. "/messages/", headers, body)
  end
  return wrk.format("GET", "/api/v1/chats/?limit=50", headers)
end

function response(status, headers, _body)
  statuses[status] = (statuses[status] or 0) + 1
  if headers["Idempotent-Replayed"] or headers["idempotent-replayed"] then replayed = replayed + 1 end
  local timing = headers["Server-Timing"] or headers["server-timing"]
  if timing then
    local dur = tonumber(timing:match("dur=([%d%.]+)"))
    if dur then
      local bucket = math.floor(dur * 10)  -- 0.1 ms buckets
      server_ms[bucket] = (server_ms[bucket] or 0) + 1
    end
  end
end

function done(summary, latency, requests)
  local all_status, all_server, all_replayed = {}, {}, 0
  for _, thread in ipairs(threads) do
    all_replayed = all_replayed + thread:get("replayed")
    for code, n in pairs(thread:get("statuses")) do all_status[code] = (all_status[code] or 0) + n end
    for bucket, n in pairs(thread:get("server_ms")) do all_server[bucket] = (all_server[bucket] or 0) + n end
  end
  local buckets, total = {}, 0
  for bucket, n in pairs(all_server) do table.insert(buckets, bucket); total = total + n end
  table.sort(buckets)
  local function server_pct(p)
    local seen = 0
    for _, bucket in ipairs(buckets) do
      seen = seen + all_server[bucket]
      if seen >= p / 100 * total then return bucket / 10 end
    end
    return -1
  end
  local parts = {}
  for code, n in pairs(all_status) do table.insert(parts, string.format('"%d": %d', code, n)) end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50": %.2f, "p95": %.2f, "p99": %.2f, ' ..
    '"errors": %d, "statuses": {%s}, "server_p50": %.2f, "server_p95": %.2f, "replayed": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    table.concat(parts, ", "), server_pct(50), server_pct(95), all_replayed))
end
