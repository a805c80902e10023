-- wrk script of bench/http_api.py: POST /v1/orgs/{org}/consumptions, every request with
-- its own Idempotency-Key, organizations taken round-robin.
--
-- Environment: BENCH_TOKEN (the bearer key), BENCH_ORGS (how many organizations, named
-- org-0000, org-0001, ...), BENCH_RUN (a prefix that makes this run's keys unique).
-- At the end one line "WRKJSON {...}" carries the figures bench/http_api.py reads.

local token = os.getenv("BENCH_TOKEN") or ""
local org_count = tonumber(os.getenv("BENCH_ORGS") or "1")
local run = os.getenv("BENCH_RUN") or "run"
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  thread_count = #threads
  if thread_count == 0 then thread_count = 1 end
  headers = {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
  }
end

function request()
  n = n + 1
  local i = n * thread_count + (id or 0)
  local org = string.format("org-%04d", i % org_count)
  headers["Idempotency-Key"] = run .. "-" .. (id or 0) .. "-" .. n
  local body = '{"feature":"report","feature_name":"Q3 pipeline","action":"publish",'
    .. '"breakdown":{"calls":12,"emails":40,"web_searches":3},"requests":2,'
    .. '"user_id":"u-' .. (i % 40) .. '"}'
  return wrk.format("POST", "/v1/orgs/" .. org .. "/consumptions", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
