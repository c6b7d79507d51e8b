-- skynet's round trip for comparison with `thread.new` (run.sh runs it): the main service keeps
-- 64 skynet.call round trips to an echo service in flight, as `stage bench` keeps 64
-- `thread.new` jobs in flight, and prints the rate.
local skynet = require "skynet"
local mode = ...
if mode == "echo" then
  skynet.start(function ()
    skynet.dispatch("lua", function (_, _, i) skynet.ret(skynet.pack(i)) end)
  end)
else
  skynet.start(function ()
    local echo = skynet.newservice("skynet", "echo")
    local N, INFLIGHT = tonumber(skynet.getenv("trips")), 64
    local done, t0 = 0, skynet.hpc()
    for c = 1, INFLIGHT do
      skynet.fork(function ()
        for i = 1, N // INFLIGHT do skynet.call(echo, "lua", i) end
        done = done + 1
        if done == INFLIGHT then
          local s = (skynet.hpc() - t0) / 1e9
          print(string.format("skynet call round trips %.0f /s", (N // INFLIGHT) * INFLIGHT / s))
          os.exit(0)
        end
      end)
    end
  end)
end
