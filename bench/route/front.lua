-- End-to-end probed deliveries with 4 subscribers: publish `route:bench=on_reply` → a probe to
-- each subscriber → the first acceptance wins → delivery → the subscriber's answer comes back.
-- IN_FLIGHT publications are kept outstanding; each answer publishes the next one.
TOTAL = tonumber(process["%ROUTE_BENCH_TOTAL"]) or 200000
IN_FLIGHT = 16
SUBSCRIBERS = 4
ready, done, sent, failed = 0, 0, 0, 0

function publish()
  if sent < TOTAL then
    sent = sent + 1
    stage.signal("route:bench!on_fail=on_reply", sent)
  end
end

function finish()
  if done + failed == TOTAL then
    local seconds = process.tick - started
    print(string.format("route: %d probed deliveries to 1 of %d subscribers in %.3f s: %.0f deliveries/s (%d failed)",
      done, SUBSCRIBERS, seconds, done / seconds, failed))
    stage.exit()
  end
end

stage.waitfor("on_reply", function () done = done + 1 publish() finish() end)
stage.waitfor("on_fail", function () failed = failed + 1 publish() finish() end)
stage.waitfor("ready", function ()
  ready = ready + 1
  if ready == SUBSCRIBERS then
    started = process.tick
    for _ = 1, IN_FLIGHT do publish() end
  end
end)
