-- MySMSGate-shaped incoming-SMS webhooks for wrk (bench/run.py drives it).
--
--   wrk -t T -c C -d CAP --latency -s bench/webhooks.lua URL -- TOTAL T PREFIX
--
-- Request number seq (0 <= seq < TOTAL) comes from sender PREFIX .. seq as 7 digits, so
-- every sender is distinct across threads: thread idx sends seq = idx, idx + T, idx + 2T...
-- Texts by seq % 4: "JOIN news", "join the list" (a reply is due), "JOINED the club",
-- "hello there" (no reply: the trigger is the first word JOIN exactly). A thread stops
-- (wrk.thread:stop) once all of its share is answered; connections that have nothing left
-- to send get an empty request, so they sit idle instead of sending more. wrk's -d is the
-- safety cap. done() prints one line "BENCH_JSON {...}" that bench/loadgen.py reads.

local threads = {}
local created = 0

function setup(thread)
   thread:set("idx", created)
   created = created + 1
   table.insert(threads, thread)
end

local TEXTS = { "JOIN news", "join the list", "JOINED the club", "hello there" }

function init(args)
   total = tonumber(args[1])
   nthreads = tonumber(args[2])
   prefix = args[3] or "+1555"
   share = math.floor((total - idx + nthreads - 1) / nthreads)
   sent = 0
   answered = 0
   acks = 0
   statuses = ""
   counts = {}
   stamp = os.time()
   headers = { ["Content-Type"] = "application/json" }
   -- wrk calls request() of the first thread once before the run, only to check that it
   -- builds a valid request: that call must not use up a sequence number.
   probe = idx == 0
end

function request()
   if sent >= share then
      return ""
   end
   local seq = idx + sent * nthreads
   if probe then
      probe = false
   else
      sent = sent + 1
   end
   local body = string.format(
      '{"from":"%s%07d","to":"+15550100000","message":"%s",'
         .. '"device_id":"bench-phone","sim_slot":0,"timestamp":%d}',
      prefix, seq, TEXTS[(seq % 4) + 1], stamp)
   return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
   answered = answered + 1
   if status >= 200 and status < 300 then
      acks = acks + 1
   else
      counts[status] = (counts[status] or 0) + 1
      local parts = {}
      for code, n in pairs(counts) do
         table.insert(parts, string.format('"%d":%d', code, n))
      end
      statuses = table.concat(parts, ",")
   end
   if answered >= share then
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local parts = {}
   for _, t in ipairs(threads) do
      table.insert(parts, string.format(
         '{"idx":%d,"share":%d,"sent":%d,"answered":%d,"acks":%d,"statuses":{%s}}',
         t:get("idx"), t:get("share"), t:get("sent"), t:get("answered"), t:get("acks"),
         t:get("statuses")))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"threads":[%s]}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ",")))
end
