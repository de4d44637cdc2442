-- wrk script: POST each pre-signed webhook of a file exactly once, then stop.
--
--   WRK_REQUESTS=requests.tsv WRK_THREADS=2 [WRK_TARGETS="127.0.0.1:8001 127.0.0.1:8002"] \
--     wrk -t 2 -c 32 -d 600s -s benchmarks/signed_requests.lua http://127.0.0.1:8001/webhooks/twilio/inbound
--
-- The file has one request per line, "<X-Twilio-Signature>\t<form body>", written by
-- benchmarks/_wrk.py (deliberate redeliveries are repeated lines there). Thread i of n takes
-- lines i, i+n, i+2n, ... and stops when they are spent, so no request is ever sent twice by
-- accident (the harness interrupts wrk when every thread is spent). WRK_TARGETS, if set, sends thread i to target i mod len (as a proxy would spread
-- connections over processes). done() prints one line, "WRK_JSON {...}", for the harness.

-- Globals, not locals: setup() sets the first two and done() reads next_index through thread:get().
thread_index, thread_count = 0, 1
requests, next_index, count = {}, 1, 0
local started_threads = {}
local targets = {}
for target in string.gmatch(os.getenv("WRK_TARGETS") or "", "%S+") do
  targets[#targets + 1] = target
end

function setup(thread)
  local n = #started_threads
  thread:set("thread_index", n)
  thread:set("thread_count", tonumber(os.getenv("WRK_THREADS") or "1"))
  if #targets > 0 then
    local host, port = string.match(targets[(n % #targets) + 1], "^(.+):(%d+)$")
    thread.addr = wrk.lookup(host, port)[1]
  end
  started_threads[n + 1] = thread
end

function init(args)
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  local line_number = 0
  for line in io.lines(os.getenv("WRK_REQUESTS")) do
    if line_number % thread_count == thread_index then
      local signature, body = string.match(line, "^([^\t]*)\t(.*)$")
      headers["X-Twilio-Signature"] = signature
      requests[#requests + 1] = wrk.format("POST", wrk.path, headers, body)
    end
    line_number = line_number + 1
  end
  count = #requests
end

function request()
  local next_request = requests[next_index]
  if next_request == nil then
    -- Spent: stop this thread, and tell the harness, which ends the run (SIGINT) once every
    -- thread is spent (wrk's own clock runs for -d otherwise). wrk still wants a request for
    -- this connection: a redelivery of this thread's first webhook, whose answer is never counted.
    if next_index == #requests + 1 then
      io.write("WRK_SPENT\n")
      io.flush()
      next_index = next_index + 1
    end
    wrk.thread:stop()
    return requests[1]
  end
  next_index = next_index + 1
  return next_request
end

function done(summary, latency, _)
  local sent = 0
  for _, thread in ipairs(started_threads) do
    sent = sent + math.min(thread:get("next_index") - 1, thread:get("count"))
  end
  local errors = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "sent": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, sent, summary.duration, errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
  ))
end
