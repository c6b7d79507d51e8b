//! The sandbox through the real binary: every example of `spec/sandbox.md` with its expected
//! output, and the rules around them (declarations, the process store, `__`, coroutine and
//! `stage.call` isolation, `stage.index`, shipped functions).

mod common;
use common::App;

/// Runs `main.lua` as the quick start and returns its stdout lines and stderr.
fn run(main: &str) -> (Vec<String>, String) {
    let out = App::script(main).run(&[]);
    let lines = out.lines().iter().map(|l| l.to_string()).collect();
    (lines, out.stderr)
}

const COROUTINE_EXAMPLE: &str = r#"
local worker = coroutine.create(function ()
  LAST = 0
  for n = 1, 3 do
    print("co", n, GREETING)
    LAST = n
    coroutine.yield()
  end
end)

for n = 1, 3 do
  GREETING = "hi-" .. n
  coroutine.resume(worker)
  print("main", LAST)
end
stage.exit()
"#;

#[test]
fn a_coroutine_gets_a_snapshot_of_the_globals_at_its_first_access() {
    // §4.5, without declarations.
    let (lines, err) = run(COROUTINE_EXAMPLE);
    assert_eq!(
        lines,
        [
            "co\t1\thi-1",
            "main\tnil",
            "co\t2\thi-1",
            "main\tnil",
            "co\t3\thi-1",
            "main\tnil"
        ],
        "{err}"
    );
}

#[test]
fn declared_names_are_shared_live_by_every_context_of_the_state() {
    // §4.5 with `_SANDBOX[""] = { "LAST", "GREETING" }` first: standard Lua's output.
    let (lines, err) = run(&format!(
        "_SANDBOX[\"\"] = {{ \"LAST\", \"GREETING\" }}\n{COROUTINE_EXAMPLE}"
    ));
    assert_eq!(
        lines,
        [
            "co\t1\thi-1",
            "main\t1",
            "co\t2\thi-2",
            "main\t2",
            "co\t3\thi-3",
            "main\t3"
        ],
        "{err}"
    );
}

#[test]
fn coroutine_wrap_isolates_too_and_tables_are_shared_by_reference() {
    let (lines, err) = run(r#"
T = { n = 1 }
local f = coroutine.wrap(function ()
  T.n = 2          -- the same table: the change is seen by the creator
  X = "inner"      -- a private binding
  coroutine.yield(X)
  return X
end)
print(f(), T.n, X)
X = "outer"
print(f(), X)
local boom = coroutine.wrap(function () error("boom") end)
print(pcall(function () boom() end))
stage.exit()
"#);
    // As in standard Lua, a wrapped coroutine's error is prefixed with the caller's position.
    assert_eq!(
        lines,
        [
            "inner\t2\tnil",
            "inner\touter",
            "false\tmain.lua:13: main.lua:12: boom"
        ],
        "{err}"
    );
}

#[test]
fn declarations_share_make_read_only_and_refuse_bad_input() {
    // §5 example, then the refusals.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*CONFIG", LIMIT = 10 }
CONFIG = { mode = "fast" }
print(LIMIT, CONFIG.mode)
print(pcall(function () LIMIT = 20 end))
print(pcall(function () _SANDBOX[""] = "CONFIG" end))
print(pcall(function () _SANDBOX[""] = { 42 } end))
_SANDBOX[""] = { ["*VERSION"] = 3 }
print(pcall(function () VERSION = 4 end))
print(VERSION, __.VERSION)
print(pcall(function () __ = 1 end))
stage.exit()
"#);
    assert_eq!(
        lines,
        [
            "10\tfast",
            "false\tmain.lua:5: read only",
            "false\tmain.lua:6: _SANDBOX[\"\"] = v: v must be a table of declarations",
            "false\tmain.lua:7: _SANDBOX[\"\"]: item 1 must be a name, got a number",
            "false\tmain.lua:9: read only",
            "3\t3",
            "false\tmain.lua:11: '__' is the process store accessor and cannot be assigned",
        ],
        "{err}"
    );
}

#[test]
fn a_declaration_only_affects_later_assignments() {
    let (lines, err) = run(r#"
EARLY = "private"
_SANDBOX[""] = { "*EARLY" }
print(EARLY, __.EARLY)          -- the private value is no longer read (decision Q6)
EARLY = "shared"
print(EARLY, __.EARLY)
stage.exit()
"#);
    assert_eq!(lines, ["nil\tnil", "shared\tshared"], "{err}");
}

#[test]
fn the_process_store_example_counts_atomically_on_workers() {
    // §7 example; the stage prints once every job has reported instead of after 500 ms.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*HITS" }
HITS = 0
done = 0
stage.waitfor("done", function ()
  done = done + 1
  if done == 4 then print("hits", HITS, __.HITS) stage.exit() end
end)
for i = 1, 4 do
  stage.submit(0, function ()
    __("HITS", function (n) return n + 1 end)      -- atomic increment on a worker
    stage.signal("done")
  end)
end

__[7].owner = "ann"
print(__[7].owner, owner)          -- namespaces are not globals
"#);
    assert_eq!(lines, ["ann\tnil", "hits\t4\t4"], "{err}");
}

#[test]
fn the_accessor_reads_writes_updates_and_namespaces() {
    let (lines, err) = run(r#"
print(__("ABSENT"), __.ABSENT)
print(__("N", 5), __.N, N)
print(__("N", function (n) print("seen", n) end), __.N)     -- no result: unchanged (decision 9)
print(__("N", function (n) return nil end), __.N)           -- explicit nil: deleted
print(__("N", function (n) return (n or 0) + 10 end), N)
print(__("N", function (n) error("broken updater") end), __.N)
print(pcall(function () return __("N", function (n) return N end) end))
__("N", nil)
print(__.N, N)
__[3].a, __[3].b = 1, 2
local names = {}
for k, v in pairs(__[3]) do names[#names + 1] = k .. "=" .. v end
table.sort(names)
print(table.concat(names, ","), __[3].a, __.a)
__[3] = nil
print(__[3].a, __[3].b)
print(pcall(function () return __[1][2] end))
print(tostring(__):match("^sandbox: 0x%x+ %[0%]$") ~= nil, tostring(__[3]):match("%[3%]$") ~= nil)
print(tostring(_SANDBOX):match("^sandbox: 0x%x+$") ~= nil)
stage.exit()
"#);
    assert_eq!(
        lines,
        [
            "nil\tnil",
            "5\t5\t5",
            "seen\t5",
            "5\t5",
            "nil\tnil",
            "10\t10",
            "nil\t10",
            "true\tnil",
            "nil\tnil",
            "a=1,b=2\t1\tnil",
            "nil\tnil",
            "false\tmain.lua:18: The access index is incorrectly specified.",
            "true\ttrue",
            "true",
        ],
        "{err}"
    );
    assert!(
        err.contains("__(\"N\", fn): the updater failed, the value is unchanged")
            && err.contains("broken updater")
            && err.contains("'N' is being updated by __(\"N\", fn) on this thread"),
        "{err}"
    );
}

#[test]
fn snapshots_are_fresh_copies_and_writes_through_a_global_store_the_whole_value() {
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*CFG" }
CFG = { limits = { max = 1 }, name = "a" }
print(CFG == CFG, CFG.limits.max)
CFG.limits.max = 5                  -- write-back at depth: the whole root is stored again
print(__.CFG.limits.max, CFG.name)
local plain = __.CFG
plain.name = "changed"              -- a plain snapshot never affects the store
print(CFG.name)
local keys = {}
for k in pairs(CFG) do keys[#keys + 1] = k end
table.sort(keys)
print(table.concat(keys, ","), #__("CFG").limits)
print(pcall(function () CFG = { co = coroutine.create(print) } end))
print(pcall(function () CFG = { f = print } end))
print(CFG.name)
stage.exit()
"#);
    assert_eq!(lines.len(), 7, "{lines:?}\n{err}");
    assert_eq!(lines[0], "false\t1", "{err}");
    assert_eq!(lines[1], "5\ta", "{err}");
    assert_eq!(lines[2], "a", "{err}");
    assert_eq!(lines[3], "limits,name\t0", "{err}");
    assert!(
        lines[4].starts_with("false\tmain.lua:14: Includes non-serialable data: a thread"),
        "{lines:?}"
    );
    assert!(
        lines[5]
            == "false\tmain.lua:15: Includes non-serialable data: a C function cannot be copied",
        "{lines:?}"
    );
    assert_eq!(lines[6], "a", "{err}");
}

#[test]
fn a_job_without_declarations_sees_neither_globals_nor_functions_of_the_main_script() {
    // §8.1; a second job with the same key ends the run once the first has failed.
    let (lines, err) = run(r#"
function greet(who) print("greet", who) end
MOTD = "welcome"
print("stage", type(thread.id))
stage.submit(1, function ()
  print("worker", MOTD)
  greet("worker")
end)
stage.submit(1, function () stage.exit() end)
"#);
    assert_eq!(lines, ["stage\tnumber", "worker\tnil"], "{err}");
    assert!(
        err.contains("attempt to call a nil value (global 'greet')") && err.contains("traceback"),
        "{err}"
    );
}

#[test]
fn process_shared_declarations_reach_the_workers() {
    // §8.2.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*greet", "*MOTD" }
function greet(who) print("greet", who) end
MOTD = "welcome"
print("stage", type(thread.id))
stage.submit(1, function ()
  print("worker", MOTD)
  greet("worker")
end)
stage.submit(1, function () stage.exit() end)
"#);
    assert_eq!(
        lines,
        ["stage\tnumber", "worker\twelcome", "greet\tworker"],
        "{err}"
    );
}

#[test]
fn a_worker_reads_through_the_accessor() {
    // §8.3.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*MOTD" }
__("MOTD", function (old) return "welcome" end)
stage.submit(0, function ()
  print("worker", __.MOTD, MOTD)
  stage.exit()
end)
"#);
    assert_eq!(lines, ["worker\twelcome\twelcome"], "{err}");
}

#[test]
fn a_handler_registered_by_a_worker_runs_on_the_stage_thread() {
    // §8.4.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*MOTD" }
MOTD = "welcome"
ORIGIN = "stage-thread"
stage.submit(0, function ()
  stage.waitfor("hello", function (msg) print("handler", msg, ORIGIN, MOTD) stage.exit() end)
  print("worker", ORIGIN)
  stage.signal("hello", "from-worker")
end)
"#);
    assert_eq!(
        lines,
        ["worker\tnil", "handler\tfrom-worker\tstage-thread\twelcome"],
        "{err}"
    );
}

#[test]
fn pairs_lists_private_globals_then_the_store() {
    // §9.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "*SHARED", "LOCALSHARED" }
SHARED = 1
LOCALSHARED = 2
PRIVATE = 3
_G.DIRECT = 4
local names = {}
for k in pairs(_SANDBOX) do names[#names + 1] = k end
table.sort(names)
print(table.concat(names, ","))
print(rawget(_G, "LOCALSHARED"), rawget(_G, "DIRECT"), rawget(_G, "PRIVATE"))
stage.exit()
"#);
    assert_eq!(lines, ["PRIVATE,SHARED", "2\t4\tnil"], "{err}");
}

#[test]
fn stage_index_converts_odd_keys_of_declared_tables() {
    // §10, then the hook's other answers.
    let (lines, err) = run(r#"
_SANDBOX[""] = { "GRID", "PLAIN:cells" }
stage.index = function (key, where, t)
  print("index", where, #key)
  return key[1] .. "x" .. key[2]
end
GRID = {}
GRID[{3, 4}] = "ship"
for k, v in pairs(GRID) do print(k, v) end
print(GRID[{3, 4}], rawget(_G, "GRID") ~= nil)
stage.index = function (key, where) print("where", where) if key == true then return nil end return 7 end
PLAIN = {}
PLAIN[true] = "skipped"
PLAIN[false] = "seven"
print(PLAIN[7], rawget(PLAIN, true), next(rawget(_G, "PLAIN")))
local undeclared = {}
undeclared[{}] = 1                -- plain tables are not affected
stage.exit()
"#);
    assert_eq!(
        lines,
        [
            "index\tthread\t2",
            "3x4\tship",
            "index\tthread\t2",
            "ship\ttrue",
            "where\tcells",
            "where\tcells",
            "seven\tnil\t7\tseven",
        ],
        "{err}"
    );
}

#[test]
fn stage_call_sees_the_callers_globals_and_its_writes_do_not_leak() {
    let (lines, err) = run(r#"
X = "caller"
local r = stage.call(function (a)
  print("inside", X, a)
  X = "callee"
  NEW = true
  return "result"
end, "arg")
print(r, X, NEW)
local ok, e = pcall(stage.call, function () Y = 1 error("inner failure") end)
print(ok, e, Y)
stage.exit()
"#);
    assert_eq!(lines.len(), 3, "{lines:?} {err}");
    assert_eq!(lines[0], "inside\tcaller\targ");
    assert_eq!(lines[1], "result\tcaller\tnil");
    assert!(
        lines[2].starts_with("false\t")
            && lines[2].contains("inner failure")
            && lines[2].ends_with("\tnil"),
        "{lines:?}"
    );
}

#[test]
fn captured_locals_of_shipped_functions_arrive_as_nil_with_one_warning() {
    // §11.4 examples (decision Q2: `_ENV` is bound by name).
    let (lines, err) = run(r#"
local greeting = "hi"
stage.submit(1, function (who)
  print(who, greeting)
end, "ann")
local factor = 2
stage.submit(1, function (x)
  local y = x * factor          -- first free name: factor
  print(y)
end, 21)
stage.submit(1, function () stage.exit() end)
"#);
    assert_eq!(lines, ["ann\tnil"], "{err}");
    assert!(
        err.contains("captures local(s) greeting") && err.contains("captures local(s) factor"),
        "{err}"
    );
    assert!(
        err.contains("attempt to perform arithmetic on a nil value (upvalue 'factor')"),
        "{err}"
    );
}
