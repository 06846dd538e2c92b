-- wrk script for the service benchmark (tools/bench/wrk.py): POST one body file over keep-alive
-- connections, count the answers by status, stop after a request cap, print one machine-readable
-- line at the end.
--   wrk -t1 -c8 -d5s --timeout 60s -s tools/bench_post.lua URL -- BODY_FILE CONTENT_TYPE MAX_REQUESTS [GET]
-- With GET last, it GETs the URL instead (no body; BODY_FILE and CONTENT_TYPE are not read).
-- MAX_REQUESTS is per wrk thread (the benchmark runs one thread: it is plenty for a Python server).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  if args[4] == "GET" then
    wrk.method = "GET"
  else
    local f = assert(io.open(args[1], "rb"))
    wrk.method = "POST"
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = args[2]
  end
  max_requests = tonumber(args[3]) or 1000000
  ok, busy, other, seen = 0, 0, 0, 0
end

function response(status, headers, body)
  seen = seen + 1
  if status == 200 then
    ok = ok + 1
  elseif status == 503 then
    busy = busy + 1
  else
    other = other + 1
  end
  if seen >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local n_ok, n_busy, n_other = 0, 0, 0
  for _, t in ipairs(threads) do
    n_ok = n_ok + t:get("ok")
    n_busy = n_busy + t:get("busy")
    n_other = n_other + t:get("other")
  end
  local e = summary.errors
  -- Latency here is over every answer (wrk cannot split it by status).
  io.write(string.format(
    'BENCH-JSON {"requests": %d, "duration_us": %d, "ok": %d, "busy": %d, "other_status": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, n_ok, n_busy, n_other,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
