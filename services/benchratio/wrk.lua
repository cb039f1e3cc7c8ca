-- benchratio's wrk script: each request is one user's, round-robin over
-- the users file (one "<path> <token>" line per user), with that user's
-- bearer token; each thread starts at its own offset. done() prints one
-- line, "benchratio-wrk <JSON>", for benchratio to read. The echo gets the
-- same requests, which it answers alike.
local users, n, i = {}, 0, 0

local threads = {}
function setup(thread)
  thread:set("offset", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local path, token = line:match("^(%S+) (%S+)$")
    n = n + 1
    users[n] = {path = path, headers = {
      ["Authorization"] = "Bearer " .. token,
      ["Bankbridge-Purpose"] = "ACCOUNT_INFORMATION",
    }}
  end
  i = ((offset or 0) * math.floor(n / 2)) % n
end

function request()
  i = i % n + 1
  local u = users[i]
  return wrk.format("GET", u.path, u.headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'benchratio-wrk {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
