-- wrk script for bench/bench_api.py: POST one fixed JSON body with an API key, and print a
-- one-line JSON summary (counts and latency percentiles) for the benchmark to parse.
-- BENCH_BODY_FILE: the body; BENCH_API_KEY: sent as "Authorization: Bearer <key>".

local path = assert(os.getenv("BENCH_BODY_FILE"), "BENCH_BODY_FILE is not set")
local key = assert(os.getenv("BENCH_API_KEY"), "BENCH_API_KEY is not set")
local file = assert(io.open(path, "rb"))

wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, '
      .. '"mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
