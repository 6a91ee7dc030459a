-- The load of bench/flash_sale_http.py, run by wrk (one thread, N connections; wrk reconnects
-- when the server closes one, as gunicorn's sync workers do after each response):
-- each attempt listed in the requests file is POSTed exactly once, then wrk stops.
-- Requests file: one attempt per line, "TOKEN<TAB>JSON body" (TOKEN empty for the reference).
-- Usage: wrk -t1 -cN -d600s -s _flash_http_load.lua URL -- REQUESTS_FILE PATH
-- Prints one line "RESULT {json}": wall time from the first request sent to the last answer,
-- latency percentiles (wrk's own histogram) and the count of each outcome.

local ffi = require("ffi")
ffi.cdef([[
typedef unsigned long pthread_t;
pthread_t pthread_self(void);
int pthread_kill(pthread_t thread, int sig);
typedef struct { long tv_sec; long tv_nsec; } shequn_timespec;
int clock_gettime(int clock, shequn_timespec *now);
]])
local SIGINT, CLOCK_MONOTONIC = 2, 1

local function seconds()
   local now = ffi.new("shequn_timespec")
   ffi.C.clock_gettime(CLOCK_MONOTONIC, now)
   return tonumber(now.tv_sec) + tonumber(now.tv_nsec) / 1e9
end

local attempts, sent, answered, started_at = {}, 0, 0, nil
local threads = {}
-- Globals, because done() reads them from the load thread with thread:get.
outcomes, wall_s = {}, 0

-- Runs in wrk's main thread, which sleeps for the -d duration: the load thread wakes it with
-- SIGINT (wrk's own "stop now") once every attempt is answered.
function setup(thread)
   thread:set("main_thread", tonumber(ffi.C.pthread_self()))
   table.insert(threads, thread)
end

function init(args)
   local path = args[2]
   for line in io.lines(args[1]) do
      local token, body = line:match("^([^\t]*)\t(.*)$")
      local headers = { ["Content-Type"] = "application/json" }
      if token ~= "" then
         headers["X-Member-Token"] = token
      end
      attempts[#attempts + 1] = wrk.format("POST", path, headers, body)
   end
end

-- Called before every request that is sent: once all attempts are sent, idle connections wait
-- (well past the end of the run) instead of sending anything more.
function delay()
   started_at = started_at or seconds()
   if sent >= #attempts then
      return 3600000
   end
   return 0
end

-- wrk also calls request() once right after init(), before any connection, and never sends
-- what it returns: that call must not use up an attempt.
function request()
   if started_at == nil then
      return attempts[1]
   end
   sent = sent + 1
   return attempts[sent]
end

function response(status, headers, body)
   answered = answered + 1
   local outcome = "placed"
   if status ~= 201 then
      outcome = body:match('"code": *"([^"]+)"') or tostring(status)
   end
   outcomes[outcome] = (outcomes[outcome] or 0) + 1
   if answered == #attempts then
      wall_s = seconds() - started_at
      wrk.thread:stop()
      ffi.C.pthread_kill(main_thread, SIGINT)
   end
end

function done(summary, latency, requests)
   local counts, wall = {}, 0
   for _, thread in ipairs(threads) do
      wall = math.max(wall, thread:get("wall_s"))
      for outcome, n in pairs(thread:get("outcomes")) do
         counts[#counts + 1] = string.format('"%s": %d', outcome, n)
      end
   end
   local errors = summary.errors
   io.write(string.format(
      'RESULT {"wall_s": %.6f, "requests": %d, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f,'
         .. ' "socket_errors": %d, "outcomes": {%s}}\n',
      wall, summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency.max / 1000, errors.connect + errors.read + errors.write + errors.timeout,
      table.concat(counts, ", ")))
end
