-- End-to-end ticket cycles: request → granted callback → release through stage.signal(nil, 0).
-- IN_FLIGHT requests are kept outstanding (limit 1000, so every request is granted at once);
-- each granted callback releases its ticket and asks for the next one.
TOTAL = tonumber(process["%TICKET_BENCH_TOTAL"]) or 1000000
IN_FLIGHT = 256
done, asked = 0, 0

stage.waitfor("work", function ()
  stage.signal(nil, 0)
  done = done + 1
  if asked < TOTAL then
    asked = asked + 1
    stage.signal("ticket:bench=work", asked)
  elseif done == TOTAL then
    local seconds = process.tick - started
    print(string.format("ticket: %d cycles (request -> grant callback -> release) in %.3f s: %.0f cycles/s",
      TOTAL, seconds, TOTAL / seconds))
    stage.exit()
  end
end)

started = process.tick
for _ = 1, IN_FLIGHT do
  asked = asked + 1
  stage.signal("ticket:bench=work", asked)
end
