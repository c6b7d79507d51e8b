//! The worker pool through the real binary (`runtime.md` §9.5, §9.8): `stage.submit` keys,
//! ordering, repetition, limits and errors; `thread.new` handles; budgets and memory caps of jobs.

mod common;
use common::App;

/// A one-stage application with `#threads` and `#limits` as given.
fn app(threads: &str, limits: &str, main: &str) -> App {
    let app = App::new();
    app.file(
        "stage.json",
        &format!(
            r##"{{ "#startup": ["lua+s"], "#threads": {threads}, "#limits": {limits}, "lua": {{ "s": "main" }} }}"##
        ),
    );
    app.file("main.lua", main);
    app
}

fn run(threads: &str, limits: &str, main: &str) -> (Vec<String>, String) {
    let out = app(threads, limits, main).run_args(&["run", "."]);
    let lines = out.lines().iter().map(|l| l.to_string()).collect();
    (lines, out.stderr)
}

#[test]
fn jobs_of_one_key_run_one_at_a_time_in_submission_order_under_load() {
    // 4 workers; 200 jobs of key 7 interleaved with 200 unkeyed jobs. Each keyed job counts
    // itself in and out of `active` atomically and appends its number to `order`.
    let (lines, err) = run(
        "[4, 10000]",
        "{}",
        r#"
for i = 1, 200 do
  stage.submit(7, function (n)
    local now = __("active", function (a) return (a or 0) + 1 end)
    __("most", function (m) if m == nil or now > m then return now end end)
    local x = 0
    for k = 1, 2000 do x = x + k end
    __("order", function (t) t = t or {} t[#t + 1] = n return t end)
    __("active", function (a) return a - 1 end)
    if n == 200 then stage.signal("finished") end
  end, i)
  stage.submit(0, function () local x = 0 for k = 1, 2000 do x = x + k end end)
end
stage.waitfor("finished", function ()
  local order, in_order = __.order, true
  for i = 1, 200 do in_order = in_order and order[i] == i end
  print("jobs", #order, "in order", in_order, "most at once", __.most)
  stage.exit()
end)
"#,
    );
    assert_eq!(
        lines,
        ["jobs\t200\tin order\ttrue\tmost at once\t1"],
        "{err}"
    );
}

#[test]
fn two_keys_run_in_parallel_on_two_workers() {
    // Each job marks itself started, then waits (bounded) until it sees the other started.
    let (lines, err) = run(
        "[2, 100]",
        "{}",
        r#"
local function meet(me, other)
  __[1][me] = true
  local deadline = os.clock() + 5
  while not __[1][other] and os.clock() < deadline do end
  stage.signal("met", me, __[1][other] == true)
end
stage.submit(1, meet, "a", "b")
stage.submit(2, meet, "b", "a")
seen = {}
stage.waitfor("met", function (me, saw)
  seen[#seen + 1] = me .. ":" .. tostring(saw)
  if #seen == 2 then table.sort(seen) print(table.concat(seen, " ")) stage.exit() end
end)
"#,
    );
    assert_eq!(lines, ["a:true b:true"], "{err}");
}

#[test]
fn a_positive_return_repeats_the_job_with_the_same_arguments() {
    let (lines, err) = run(
        "[2, 100]",
        "{}",
        r#"
started = process.tick
stage.submit(3, function (tag)
  local n = __("runs", function (n) return (n or 0) + 1 end)
  stage.signal("ran", tag, n)
  if n < 3 then return 50 end
end, "T")
stage.waitfor("ran", function (tag, n)
  print("run", tag, n)
  if n == 3 then
    print("took at least 100 ms", process.tick - started >= 0.099)
    stage.exit()
  end
end)
"#,
    );
    assert_eq!(
        lines,
        [
            "run\tT\t1",
            "run\tT\t2",
            "run\tT\t3",
            "took at least 100 ms\ttrue"
        ],
        "{err}"
    );
}

#[test]
fn a_full_queue_raises_an_error_naming_the_limit() {
    // One worker, held by a job that waits for a flag; the queue holds 4 jobs.
    let (lines, err) = run(
        "[1, 4]",
        "{}",
        r#"
stage.submit(0, function ()
  local deadline = os.clock() + 5
  while not __.release and os.clock() < deadline do end
end)
accepted, refused, finished = 1, nil, 0
for i = 1, 10 do
  local ok, e = pcall(stage.submit, 0, function () stage.signal("finished") end)
  if ok then accepted = accepted + 1 else refused = e break end
end
print("accepted", accepted)
print(refused)
__.release = true
stage.waitfor("finished", function ()
  finished = finished + 1
  if finished == accepted - 1 then stage.submit(0, function () stage.signal("drained") end) end
end)
stage.waitfor("drained", function () print("served after the queue drained") stage.exit() end)
"#,
    );
    assert_eq!(lines.len(), 3, "{lines:?}\n{err}");
    assert_eq!(lines[0], "accepted\t4");
    assert_eq!(
        lines[1],
        "the job queue is full: 4 jobs are outstanding (#threads[1])"
    );
    assert_eq!(lines[2], "served after the queue drained");
}

#[test]
fn a_job_can_be_a_script_and_refuses_other_types() {
    let app = app(
        "[2, 100]",
        "{}",
        r#"
print(pcall(stage.submit, 0, 42))
print(pcall(stage.submit, 0, { }))
print(pcall(stage.submit, 0, function () end, coroutine.create(print)))
print(pcall(thread.signal, "x"))
-- Submitted after the prints above: a job runs on a worker while the main script goes on.
stage.submit(1, "job+run", 5)
stage.submit(1, "job+count")
stage.submit(1, function () stage.signal("last") end)
stage.waitfor("last", function () stage.exit() end)
"#,
    );
    app.file(
        "job.lua",
        r#"return { run = function (n) print("script job", n, MAIN) end, count = 3 }"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "false\tUnsupported data types: stage.submit runs a function or a script name, got number",
            "false\tUnsupported data types: stage.submit runs a function or a script name, got table",
            "false\tIncludes non-serialable data: a thread cannot be stored or copied to another thread",
            "false\tThread is not in use",
            "script job\t5\tnil",
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn thread_new_delivers_signals_then_the_result_to_its_callback() {
    // runtime.md §9.8 example, then the handle's other behaviour.
    let (lines, err) = run(
        "[2, 100]",
        "{}",
        r##"
_SANDBOX[""] = { "*GREETING" }
GREETING = "hi"
MAIN_ONLY = "main"

local h = thread.new(function (n)
  print("job", GREETING, MAIN_ONLY)
  thread.signal("progress", n)
  return n * 2
end, 21)

id = h.waitfor(function (...)
  print("got", MAIN_ONLY, ...)
  if select("#", ...) == 1 then stage.signal("next") end
end)
ID_IS_THE_HANDLES = tostring(h) == "thread: " .. id

stage.waitfor("next", function ()
  print("callback id", type(id), #id, ID_IS_THE_HANDLES)
  local h2 = thread.new(function () thread.signal() thread.signal(1, 2) end)
  print("handle", type(h2.id), type(h2.tick), h2.new == thread.new, h2.signal)
  h2.waitfor(function (tag, ...)
    print("h2", tag, select("#", ...), ..., _WAITFOR[0] == _WAITFOR[-1])
    if select("#", ...) == 0 then stage.signal("third") end
  end, "tag")
end)

stage.waitfor("third", function ()
  local h3 = thread.new(function () thread.signal("before") error("job failed") end)
  h3.waitfor(function (v)
    print("h3", v)
    local registered = stage.waitfor()
    stage.addtask(1500, function ()
      local now = stage.waitfor()
      local left = 0
      for name in pairs(now) do if #name == 16 then left = left + 1 end end
      print("callbacks left after 1.5 s", left)
      stage.exit()
    end)
  end)
end)
"##,
    );
    assert_eq!(
        lines,
        [
            "job\thi\tnil",
            "got\tmain\tprogress\t21",
            "got\tmain\t42",
            "callback id\tstring\t16\ttrue",
            "handle\tnumber\tnumber\ttrue\tnil",
            "h2\ttag\t2\t1\ttrue",
            "h2\ttag\t0\tnil\ttrue",
            "h3\tbefore",
            "callbacks left after 1.5 s\t0",
        ],
        "{err}"
    );
    assert!(err.contains("job failed"), "{err}");
}

#[test]
fn handles_of_a_function_and_callback_used_again_behave_as_the_first() {
    // The first handle ships JOB and registers CB through the ordinary path; the next ones take
    // the shortcuts for functions shipped before (api/thread_jobs.rs). Each callback starts the next
    // job, so the output is in order.
    let (lines, err) = run(
        "[2, 100]",
        "{}",
        r##"
JOB = function (n) return n * 10 end
IDS, HANDLES = {}, {}
CB = function (v)
  if type(v) == "string" then print("cb", v, _WAITFOR[0] == IDS[1]) return end
  local i = v // 10
  print("cb", v, _WAITFOR[0] == IDS[i], _WAITFOR[-1] == IDS[i])
  if i < 4 then START(i + 1) else stage.signal("ended") end
end
function START(i)
  local h = thread.new(JOB, i)
  IDS[i], HANDLES[i] = h.waitfor(CB), h
  assert(tostring(h) == "thread: " .. IDS[i])
end
START(1)

stage.waitfor("ended", function ()
  local listed, distinct = stage.waitfor(), {}
  for i = 1, 4 do
    distinct[IDS[i]] = true
    print("listed", i, #IDS[i], listed[IDS[i]] ~= nil)
  end
  local n = 0 for _ in pairs(distinct) do n = n + 1 end
  print("distinct ids", n)
  -- The job of handle 1 has ended: its callback is still registered for about a second.
  stage.signal(IDS[1], "again")
  HANDLES[2].waitfor(function (v) print("replaced", v, _WAITFOR[0] == IDS[2]) end)
  stage.signal(IDS[2], "again")
  HANDLES[3].waitfor(nil)
  stage.signal(IDS[3], "gone")
  -- Registration arguments (also for a callback registered before without) and values that
  -- are not plain data take the ordinary path.
  thread.new(JOB, 5).waitfor(ARGS)
end)
ARGS = function (tag, v)
  print("args", tag, v)
  if tag == 50 then thread.new(JOB, 6).waitfor(ARGS, "tag") return end
  thread.new(function (t) return #t, t.k end, { 1, 2, k = "v" }).waitfor(CB2)
end
CB2 = function (n, k)
  print("table", n, k, stage.waitfor(IDS[3]) == nil)
  stage.addtask(1500, function ()
    local left = 0
    for name in pairs(stage.waitfor()) do if #name == 16 then left = left + 1 end end
    print("callbacks left after 1.5 s", left)
    -- Gone from the fast path's table too.
    stage.signal(IDS[1], "late")
    stage.signal("bye")
  end)
end
stage.waitfor("bye", function () stage.exit() end)
"##,
    );
    assert_eq!(
        lines,
        [
            "cb\t10\ttrue\ttrue",
            "cb\t20\ttrue\ttrue",
            "cb\t30\ttrue\ttrue",
            "cb\t40\ttrue\ttrue",
            "listed\t1\t16\ttrue",
            "listed\t2\t16\ttrue",
            "listed\t3\t16\ttrue",
            "listed\t4\t16\ttrue",
            "distinct ids\t4",
            "cb\tagain\ttrue",
            "replaced\tagain\ttrue",
            "args\t50\tnil",
            "args\ttag\t60",
            "table\t2\tv\ttrue",
            "callbacks left after 1.5 s\t0",
        ],
        "{err}"
    );
}

#[test]
fn thread_new_and_waitfor_raise_their_errors_at_the_calling_line() {
    // One worker held by a job until the script is done, and room for two jobs: the second
    // thread.new of JOB (the shortcut for a function shipped before) finds the queue full.
    let (lines, err) = run(
        "[1, 2]",
        "{}",
        r##"
JOB = function () end
stage.submit(0, function () while not __.done do end end)
local h = thread.new(JOB)
local ok, e = pcall(function ()
  local h = thread.new(JOB)
  return h
end)
print(ok, e)
print(pcall(function ()
  local h = thread.new(42)
  return h
end))
print(pcall(function ()
  local id = h.waitfor(print)
  return id
end))
__("done", function () return true end)
stage.exit()
"##,
    );
    assert_eq!(
        lines,
        [
            "false\tmain.lua:6: the job queue is full: 2 jobs are outstanding (#threads[1])",
            "false\tmain.lua:11: thread.new(fn, ...): fn must be a function, not a number",
            "false\tmain.lua:15: Includes non-serialable data: a C function cannot be copied",
        ],
        "{err}"
    );
}

#[test]
fn a_job_acts_for_its_stage_and_reaches_other_stages() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+a", "lua+b"]], "lua": { "a": "a", "b": "b" } }"##,
    );
    app.file(
        "a.lua",
        r#"
stage.submit(0, function ()
  print("lookup", pcall(stage.waitfor, "x"))
  print("sync", pcall(stage.signal, ":x"))
  print("addtask", pcall(stage.addtask, 10, print))
  stage.signal("b:hello", "from a's job")   -- last: b ends the run
end)
"#,
    );
    app.file(
        "b.lua",
        r#"stage.waitfor("hello", function (v) print("b got", v, _WAITFOR[2]) stage.exit() end)"#,
    );
    let out = app.run_args(&["run", "."]);
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(
        lines,
        [
            "addtask\tfalse\tthis function is only available on a stage thread, not in a worker job",
            "b got\tfrom a's job\ta",
            "lookup\tfalse\tstage.waitfor(name) reads the stage's handlers: call it on its stage thread, not in a worker job",
            "sync\tfalse\ta worker job cannot call its stage's handlers synchronously (':msg' or a reply to its own stage): send an asynchronous message instead",
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn runaway_jobs_memory_bombs_and_deep_recursion_are_stopped_and_the_next_job_runs() {
    let (lines, err) = run(
        "[1, 100]",
        r#"{ "job_budget_ms": 300, "lua_memory_mib": 16 }"#,
        r#"
stage.submit(1, function () while true do end end)
stage.submit(1, function () stage.signal("served", 1) end)
stage.submit(1, function ()
  while true do pcall(function () while true do end end) end
end)
stage.submit(1, function () stage.signal("served", 2) end)
stage.submit(1, function () local t = {} for i = 1, 1e9 do t[i] = ("x"):rep(1 << 20) end end)
stage.submit(1, function () stage.signal("served", 3) end)
stage.submit(1, function () local function f(n) return f(n + 1) + 1 end return f(1) end)
stage.submit(1, function () local s = "x" while true do s = s .. s end end)
stage.submit(1, function () stage.signal("served", 4) end)
stage.waitfor("served", function (n) print("served", n) if n == 4 then stage.exit() end end)
"#,
    );
    assert_eq!(
        lines,
        ["served\t1", "served\t2", "served\t3", "served\t4"],
        "{err}"
    );
    assert_eq!(err.matches("#limits.job_budget_ms").count(), 2, "{err}");
    // The memory bomb, the string bomb and the recursion (whose stack meets the memory cap
    // before Lua's stack limit) each end in a memory or stack error.
    let stopped = err.matches("not enough memory").count() + err.matches("stack overflow").count();
    assert_eq!(stopped, 3, "{err}");
}

#[test]
fn jobs_start_jobs_load_scripts_and_share_once_with_their_process() {
    let app = app(
        "[2, 100]",
        "{}",
        r#"
stage.once("boot", function () print("once on the stage thread") end)
stage.submit(1, function ()
  stage.once("boot", function () print("once again?") end)
  print("loaded in a job", stage.load("lib+value"))
  stage.submit(1, function (v) stage.signal("nested", v) end, "from a nested job")
  local h = thread.new(function () return "inner thread" end)
  h.waitfor(function (v) print("callback", v) stage.signal("nested", "done") end)
end)
seen = 0
stage.waitfor("nested", function (v)
  print("nested", v)
  seen = seen + 1
  if seen == 2 then stage.exit() end
end)
"#,
    );
    app.file("lib.lua", r#"return { value = "lib value" }"#);
    let out = app.run_args(&["run", "."]);
    let mut lines = out.lines();
    lines[2..].sort();
    assert_eq!(
        lines,
        [
            "once on the stage thread",
            "loaded in a job\tlib value",
            "callback\tinner thread",
            "nested\tdone",
            "nested\tfrom a nested job",
        ],
        "{}",
        out.stderr
    );
}
