-- A subscriber of `bench`: accepts every probe, answers every delivery.
stage.waitfor("route:@", function (target, token) stage.signal(nil, token) end)
stage.waitfor("on_bench", function (request_key, n) return n end)
stage.signal("route:@", { bench = "on_bench" })
stage.signal("front:ready")
