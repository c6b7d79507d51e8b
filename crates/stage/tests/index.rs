//! The `index` service through the real binary: every example of `spec/index.md` with its
//! expected reply, the acceptance tests, persistence across restarts (clean stop and SIGKILL),
//! corrupt files and bad input.

mod common;

use common::{App, LIMIT};
use std::path::{Path, PathBuf};

/// Lua helpers: `dump(v)` prints a value with sorted keys; `step(key, value)` queues a
/// `stage.signal`; `go()` sends them one after another, each once the previous reply arrived
/// (steps without `=callback` go on at once), prints `<key> <reply>` per reply and calls
/// `finish()` (default: exit) after the last one.
const PRELUDE: &str = r##"
-- Handlers lose their upvalues when registered: everything they use is global.
function dump(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function (a, b)
    if type(a) == type(b) then return a < b end
    return type(a) == "number"
  end)
  local out = {}
  for _, k in ipairs(keys) do
    local ks
    if type(k) == "number" then ks = "[" .. k .. "]"
    elseif k:match("^[%a_][%w_]*$") then ks = k
    else ks = "[" .. string.format("%q", k) .. "]" end
    out[#out + 1] = ks .. "=" .. dump(v[k])
  end
  return "{" .. table.concat(out, ",") .. "}"
end
STEPS, AT = {}, 0
function finish() stage.exit() end
function step(key, value) STEPS[#STEPS + 1] = { key, value } end
function go()
  AT = AT + 1
  local s = STEPS[AT]
  if not s then return finish() end
  stage.signal(s[1], s[2])
  if s[1]:find("?", 1, true) and not s[1]:find("=", 1, true) then return go() end
end
for _, name in ipairs({ "cb", "on_set", "on_batch" }) do
  stage.waitfor(name, function (r) print(STEPS[AT][1] .. " " .. dump(r)) go() end)
end
"##;

/// An application with the index service `index+<service>` (section `section`) and one Lua
/// stage `app` running `PRELUDE` followed by `script`.
fn app(service: &str, section: &str, script: &str) -> App {
    let app = App::new();
    app.file(
        "stage.json",
        &format!(
            r##"{{ "#startup": [["index+{service}"], ["lua+app"]], "index+{service}": {section}, "lua": {{ "app": "main" }} }}"##
        ),
    );
    app.file("main.lua", &format!("{PRELUDE}\n{script}"));
    app
}

/// Runs the application to its end and checks that it printed exactly `want`.
fn expect(app: &App, want: &[&str]) -> common::Output {
    let out = app.run_args(&["run", "."]);
    assert_eq!(out.lines(), want, "stderr:\n{}", out.stderr);
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    out
}

#[test]
fn every_example_of_the_spec_replies_as_shown() {
    // Each section works on a file of its own so that its state is the one the spec assumes.
    let app = app(
        "index",
        r##"{ "dir": "data/" }"##,
        r##"
-- §3.1 short form, §3.2 table form (continuing on the same file)
step("index:s?rank=on_set", { KR0001 = { i = 1120, v = { name = "HELLO" } } })
step("index:on_batch", {
  ["#1.set:rank/1"] = { KR0002 = { i = 100, v = "TEST2" } },
  ["#2.get:rank"]   = { "KR0002" },
})
-- §4.1 set
step("index:s?s41=cb", { A = { i = 10, v = "a" } })
step("index:s?s41=cb", { B = { i = 20, v = "b" } })
step("index:s?s41=cb", { A = { i = 10 } })
step("index:s?s41=cb", { A = { v = "a2" } })
step("index:s?s41/2=cb", { A = { I = { 5, 7 } } })
step("index:g?s41/=cb", "A")
-- §4.2 get (A = 10, v = "a2"; B = 20, v = "b")
step("index:s?g42=cb", { A = { i = 10, v = "a2" } })
step("index:s?g42=cb", { B = { i = 20, v = "b" } })
step("index:g?g42=cb", { "A", "B", "ZZ" })
-- §4.3 del
step("index:d?g42=cb", "A")
step("index:g?g42=cb", "A")
step("index:d?g42/=cb", "A")
step("index:d?g42/=cb", "A")
-- §4.4 forEach
-- (one ID per message: within one message the IDs run in table order, which Lua does not fix)
step("index:s?f44=cb", { B = { i = 20, v = "b" } })
step("index:s?f44=cb", { A = { i = 10, v = "a2" } })
step("index:s?f44=cb", { C = { i = 5, v = "c" } })
step("index:s?f44=cb", { D = { i = 1, v = "d" } })
step("index:f?f44=cb", { 2, 3 })
-- §4.5 range (ranks 1:B(20) 2:A(10) 3:C(5))
step("index:s?r45", { B = { i = 20, v = "b" }, A = { i = 10, v = "a" }, C = { i = 5, v = "c" } })
step("index:r?r45=cb", { 15, 2 })
step("index:r?r45=cb", { "C", 1, 5 })
step("index:r?r45=cb", { "B", 3, 1 })
-- §4.6 total (decision D6)
step("index:t?f44=cb", 0)
step("index:t?f44/1=cb", 0)
step("index:t?f44/2=cb", 0)
step("index:t?f44/=cb", 0)
go()
"##,
    );
    expect(
        &app,
        &[
            "index:s?rank=on_set {KR0001=1}",
            r##"index:on_batch {["#1.set:rank/1"]={KR0002=2},["#2.get:rank"]={KR0002={I={[1]={d=2,i=100}},v="TEST2"}}}"##,
            "index:s?s41=cb {A=1}",
            "index:s?s41=cb {B=1}",
            "index:s?s41=cb {A=0}",
            "index:s?s41=cb {A=-1}",
            "index:s?s41/2=cb {A=1}",
            r##"index:g?s41/=cb {A={I={[1]={[1]=5},[2]={[1]=7}},v="a2"}}"##,
            "index:s?g42=cb {A=1}",
            "index:s?g42=cb {B=1}",
            r##"index:g?g42=cb {A={I={[1]={d=2,i=10}},v="a2"},B={I={[1]={d=1,i=20}},v="b"},ZZ={}}"##,
            "index:d?g42=cb {A=true}",
            r##"index:g?g42=cb {A={v="a2"}}"##,
            "index:d?g42/=cb {A=true}",
            "index:d?g42/=cb {A=false}",
            "index:s?f44=cb {B=1}",
            "index:s?f44=cb {A=2}",
            "index:s?f44=cb {C=3}",
            "index:s?f44=cb {D=4}",
            r##"index:f?f44=cb {[2]={d=2,i=10,k="A",v="a2"},[3]={d=3,i=5,k="C",v="c"},[4]={d=4,i=1,k="D",v="d"}}"##,
            r##"index:r?r45=cb {[2]={d=2,i=10,k="A",v="a"},[3]={d=3,i=5,k="C",v="c"}}"##,
            r##"index:r?r45=cb {[2]={d=2,i=10,k="A",v="a"},[3]={d=3,i=5,k="C",v="c"}}"##,
            r##"index:r?r45=cb {[1]={d=1,i=20,k="B",v="b"}}"##,
            "index:t?f44=cb 4",
            "index:t?f44/1=cb 4",
            "index:t?f44/2=cb 0",
            "index:t?f44/=cb 4",
        ],
    );
}

#[test]
fn acceptance_tests_1_to_13_and_15() {
    let app = app(
        "rank",
        r##"{ "dir": "data/", "max_value_bytes": 64 }"##,
        r##"
-- 1. ordering
step("rank:s?t1=cb", { A = { i = 10, v = "a" } })
step("rank:s?t1=cb", { B = { i = 200, v = "b" } })
step("rank:s?t1=cb", { C = { i = 100, v = "c" } })
step("rank:f?t1=cb", { 1, 3 })
-- 2. set reply
step("rank:s?t1=cb", { D = { i = 150, v = "d" } })
step("rank:s?t1=cb", { D = { i = 150 } })
step("rank:s?t1=cb", { D = { v = "d2" } })
step("rank:s?t1=cb", { D = { i = 1000 } })
-- 3. get
step("rank:g?t1=cb", { "C", "ZZ" })
-- 4. ties
step("rank:s?t4=cb", { X = { i = 50, v = "x" } })
step("rank:s?t4=cb", { Y = { i = 50, v = "y" } })
step("rank:f?t4=cb", { 1, 2 })
step("rank:g?t4=cb", { "X", "Y" })
-- 5. and 6. range by score and around an ID (fresh file with test 1's data)
step("rank:s?t5", { A = { i = 10, v = "a" }, B = { i = 200, v = "b" }, C = { i = 100, v = "c" } })
step("rank:r?t5=cb", { 150, 2 })
step("rank:r?t5=cb", { 5, 1 })
step("rank:r?t5=cb", { 1000, 1 })
step("rank:r?t5=cb", { "A", 1, 3 })
step("rank:r?t5=cb", { "B", 5, 2 })
-- 7. tiers, 11. totals
step("rank:s?t1/2=cb", { A = { I = { 1, 99 } } })
step("rank:f?t1/2=cb", { 1, 1 })
step("rank:g?t1/=cb", { "A" })
step("rank:t?t1=cb", 0)
step("rank:t?t1/1=cb", 0)
step("rank:t?t1/2=cb", 0)
-- 8. delete one tier, 9. delete all
step("rank:d?t1=cb", "A")
step("rank:g?t1=cb", "A")
step("rank:g?t1/2=cb", "A")
step("rank:d?t1/=cb", "A")
step("rank:g?t1=cb", "A")
step("rank:d?t1/=cb", "A")
-- 10. string scores below integers, descending byte-wise
step("rank:s?t10", { S1 = { i = "b" }, S2 = { i = "a" }, N = { i = -5 }, P = { i = 3 } })
step("rank:f?t10=cb", { 1, 10 })
-- 12. no callback: stored, no reply (a stray reply would shift every line below)
step("rank:s?t12", { Q = { i = 1, v = "q" } })
step("rank:g?t12=cb", "Q")
-- 13. batch order: #1 runs before #2 whatever the table order
step("rank:cb", { ["#2.get:t13"] = "K", ["#1.set:t13"] = { K = { i = 7, v = "k" } } })
-- 15. a value over max_value_bytes (64): that ID is left out and nothing is stored
step("rank:s?t15=cb", { BIG = { i = 1, v = string.rep("x", 100) }, OK = { i = 2, v = "small" } })
step("rank:g?t15=cb", { "BIG", "OK" })
-- D3 integral floats are integers; Q9 numeric keys become "#n"; D4 several scores
step("rank:s?t16=cb", { F = { i = 50.0 } })
step("rank:s?t16=cb", { [5] = { i = 1 } })
step("rank:s?t16=cb", { M = { i = { 100, 6 } } })
step("rank:g?t16=cb", { "#5", "F", "M" })
go()
"##,
    );
    expect(
        &app,
        &[
            "rank:s?t1=cb {A=1}",
            "rank:s?t1=cb {B=1}",
            "rank:s?t1=cb {C=2}",
            r##"rank:f?t1=cb {[1]={d=1,i=200,k="B",v="b"},[2]={d=2,i=100,k="C",v="c"},[3]={d=3,i=10,k="A",v="a"}}"##,
            "rank:s?t1=cb {D=2}",
            "rank:s?t1=cb {D=0}",
            "rank:s?t1=cb {D=-1}",
            "rank:s?t1=cb {D=1}",
            r##"rank:g?t1=cb {C={I={[1]={d=3,i=100}},v="c"},ZZ={}}"##,
            "rank:s?t4=cb {X=1}",
            "rank:s?t4=cb {Y=1}",
            r##"rank:f?t4=cb {[1]={d=1,i=50,k="Y",v="y"},[2]={d=2,i=50,k="X",v="x"}}"##,
            r##"rank:g?t4=cb {X={I={[1]={d=1,i=50}},v="x"},Y={I={[1]={d=1,i=50}},v="y"}}"##,
            r##"rank:r?t5=cb {[2]={d=2,i=100,k="C",v="c"},[3]={d=3,i=10,k="A",v="a"}}"##,
            "rank:r?t5=cb {}",
            r##"rank:r?t5=cb {[1]={d=1,i=200,k="B",v="b"}}"##,
            r##"rank:r?t5=cb {[2]={d=2,i=100,k="C",v="c"},[3]={d=3,i=10,k="A",v="a"}}"##,
            r##"rank:r?t5=cb {[1]={d=1,i=200,k="B",v="b"},[2]={d=2,i=100,k="C",v="c"}}"##,
            "rank:s?t1/2=cb {A=1}",
            r##"rank:f?t1/2=cb {[1]={d=1,i=99,k="A",v="a"}}"##,
            r##"rank:g?t1/=cb {A={I={[1]={[1]=1},[2]={[1]=99}},v="a"}}"##,
            "rank:t?t1=cb 4",
            "rank:t?t1/1=cb 4",
            "rank:t?t1/2=cb 1",
            "rank:d?t1=cb {A=true}",
            r##"rank:g?t1=cb {A={v="a"}}"##,
            r##"rank:g?t1/2=cb {A={I={[1]={d=1,i=99}},v="a"}}"##,
            "rank:d?t1/=cb {A=true}",
            "rank:g?t1=cb {A={}}",
            "rank:d?t1/=cb {A=false}",
            r##"rank:f?t10=cb {[1]={d=1,i=3,k="P"},[2]={d=2,i=-5,k="N"},[3]={d=3,i="b",k="S1"},[4]={d=4,i="a",k="S2"}}"##,
            r##"rank:g?t12=cb {Q={I={[1]={d=1,i=1}},v="q"}}"##,
            r##"rank:cb {["#1.set:t13"]={K=1},["#2.get:t13"]={K={I={[1]={d=1,i=7}},v="k"}}}"##,
            "rank:s?t15=cb {OK=1}",
            r##"rank:g?t15=cb {BIG={},OK={I={[1]={d=1,i=2}},v="small"}}"##,
            "rank:s?t16=cb {F=1}",
            "rank:s?t16=cb {[5]=2}",
            "rank:s?t16=cb {M=3}",
            r##"rank:g?t16=cb {["#5"]={I={[1]={d=4,i=1}}},F={I={[1]={d=2,i=50}}},M={I={[1]={d=1,i=100},[2]={d=3,i=6}}}}"##,
        ],
    );
}

/// Sets 1000 IDs (two messages of 500, values and two tiers), deletes a few, and prints the
/// whole tier 1 and the counts.
const FILL: &str = r##"
local a, b = {}, {}
for n = 1, 1000 do
  local t = n <= 500 and a or b
  t[string.format("ID%04d", n)] = { I = { (n * 7919) % 1000, n % 7 }, v = { n = n, tag = "t" .. n % 3 } }
end
step("rank:s?p", a)
step("rank:s?p", b)
step("rank:d?p/=cb", { "ID0001", "ID0500", "ID1000" })
step("rank:d?p/2=cb", { "ID0002" })
"##;

/// Reads back what `FILL` left.
const CHECK: &str = r##"
step("rank:t?p=cb", 0)
step("rank:t?p/1=cb", 0)
step("rank:t?p/2=cb", 0)
step("rank:f?p=cb", { 1, 1000 })
step("rank:f?p/2=cb", { 1, 3 })
step("rank:g?p/=cb", { "ID0002", "ID0003" })
"##;

fn check_lines(out: &common::Output) -> Vec<String> {
    let lines: Vec<String> = out
        .lines()
        .into_iter()
        .filter(|l| !l.starts_with("rank:d?"))
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}\nstderr:\n{}", out.stderr);
    assert_eq!(lines[0], "rank:t?p=cb 997");
    assert_eq!(lines[1], "rank:t?p/1=cb 997");
    assert_eq!(lines[2], "rank:t?p/2=cb 996");
    assert_eq!(
        lines[5],
        r##"rank:g?p/=cb {ID0002={I={[1]={[1]=838}},v={n=2,tag="t2"}},ID0003={I={[1]={[1]=757},[2]={[1]=3}},v={n=3,tag="t0"}}}"##
    );
    lines
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn data_survives_a_restart_of_the_node() {
    let app = app(
        "rank",
        r##"{ "dir": "data/" }"##,
        &format!("{FILL}\n{CHECK}\ngo()"),
    );
    let first = app.run_args(&["run", "."]);
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    let before = check_lines(&first);
    assert!(
        log_files(&app.path().join("data"))
            .iter()
            .any(|p| p.to_string_lossy().ends_with("p.0000000001.log")),
        "{:?}",
        log_files(&app.path().join("data"))
    );
    // Second run: only reads.
    app.file("main.lua", &format!("{PRELUDE}\n{CHECK}\ngo()"));
    let second = app.run_args(&["run", "."]);
    assert_eq!(second.code, Some(0), "{}", second.stderr);
    assert_eq!(check_lines(&second), before);
    assert!(
        second
            .stderr
            .contains("p: 997 IDs loaded (no snapshot, 1004 log records)"),
        "{}",
        second.stderr
    );
}

#[test]
fn an_acknowledged_set_survives_sigkill() {
    let app = app(
        "rank",
        r##"{ "dir": "data/", "fsync_ms": 60000 }"##,
        &format!(
            "{FILL}\nstep(\"rank:t?p=cb\", 0)\n\
             finish = function () print(\"acknowledged\") end\ngo()"
        ),
    );
    let mut running = app.start(&["run", "."]);
    running.wait_stdout(LIMIT, |l| l == "acknowledged");
    running.signal("KILL");
    let killed = running.wait_exit(LIMIT);
    assert_ne!(killed.code, Some(0));
    app.file("main.lua", &format!("{PRELUDE}\n{CHECK}\ngo()"));
    let after = app.run_args(&["run", "."]);
    assert_eq!(after.code, Some(0), "{}", after.stderr);
    check_lines(&after);
}

#[test]
fn bad_input_is_logged_changes_nothing_and_the_node_keeps_serving() {
    let app = app(
        "rank",
        r##"{ "dir": "data/" }"##,
        r##"
step("rank:x?b=cb", { A = { i = 1 } })
step("rank:s?b/9=cb", { A = { i = 1 } })
step("rank:s?b=cb", 42)
step("rank:s?b=cb", { A = { i = 0.5 }, B = "no table", C = { i = 3, v = "c" } })
step("rank:s?b/=cb", { D = { i = 4 } })
step("rank:f?b/=cb", { 1, 10 })
step("rank:r?b=cb", { true })
step("rank:g?b=cb", { "C", 7 })
step("rank:cb", 5)
step("rank:cb", { ["nonsense"] = 1, ["t?b"] = 0 })
step("rank:g?../escape/1=cb", "A")
step("rank:f?b=cb", { 1, 10 })
go()
"##,
    );
    let out = expect(
        &app,
        &[
            "rank:x?b=cb nil",
            "rank:s?b/9=cb nil",
            "rank:s?b=cb nil",
            "rank:s?b=cb {C=1}",
            "rank:s?b/=cb {}",
            "rank:f?b/=cb {}",
            "rank:r?b=cb {}",
            r##"rank:g?b=cb {C={I={[1]={d=1,i=3}},v="c"}}"##,
            "rank:cb {}",
            r##"rank:cb {["t?b"]=1}"##,
            "rank:g?../escape/1=cb nil",
            r##"rank:f?b=cb {[1]={d=1,i=3,k="C",v="c"}}"##,
        ],
    );
    let warns: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("index:"))
        .collect();
    for needle in [
        r##"rank:x?b=cb: "x?b": unknown command "x""##,
        r##"rank:s?b/9=cb: "s?b/9": no such tier "9""##,
        r##"set on "b": the argument must be a table { [ID] = { v = …, i = …, I = … } }, got the integer 42"##,
        r##"ID "A": `i` holds an invalid score (the float 0.5)"##,
        r##"ID "B": the entry must be a table, got string"##,
        r##"ID "D": `i` needs a single tier"##,
        r##"forEach on "b" needs a single tier"##,
        r##"range on "b": the argument must be"##,
        r##"get on "b": ID "#2": an ID must be a string, got the integer 7"##,
        "the table form needs a table of commands, got the integer 5",
        r##""nonsense": no '?' or ':'"##,
        r##"index file "../escape": invalid index file name"##,
    ] {
        assert!(
            warns.iter().any(|l| l.contains(needle)),
            "no WARN line with {needle:?} in:\n{}",
            warns.join("\n")
        );
    }
}

#[test]
fn a_corrupt_file_refuses_to_load_and_the_others_keep_working() {
    let app = app(
        "rank",
        r##"{ "dir": "data/" }"##,
        r##"
local t = {}
for n = 1, 50 do t["K" .. n] = { i = n, v = string.rep("v", 20) } end
step("rank:s?good=cb", { G = { i = 1, v = "g" } })
step("rank:s?bad", t)
step("rank:t?bad=cb", 0)
go()
"##,
    );
    expect(&app, &["rank:s?good=cb {G=1}", "rank:t?bad=cb 50"]);
    let log = app.path().join("data/bad.0000000001.log");
    let mut bytes = std::fs::read(&log).expect("log of bad");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&log, &bytes).expect("corrupt it");
    app.file(
        "main.lua",
        &format!(
            "{PRELUDE}\n{}",
            r##"
step("rank:t?bad=cb", 0)
step("rank:s?bad=cb", { X = { i = 1 } })
step("rank:g?good=cb", "G")
step("rank:s?good=cb", { H = { i = 2 } })
go()
"##
        ),
    );
    let out = expect(
        &app,
        &[
            "rank:t?bad=cb nil",
            "rank:s?bad=cb nil",
            r##"rank:g?good=cb {G={I={[1]={d=1,i=1}},v="g"}}"##,
            "rank:s?good=cb {H=1}",
        ],
    );
    let named = out.stderr.lines().find(|l| {
        l.contains("ERROR")
            && l.contains("bad refuses to load")
            && l.contains("bad.0000000001.log: corrupt data at byte offset")
    });
    assert!(named.is_some(), "{}", out.stderr);
    // The corrupt log is left as it was for inspection.
    assert_eq!(std::fs::read(&log).expect("log"), bytes);
}

#[test]
fn a_qualified_callback_reaches_another_stage() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["index+rank"], ["lua+app"], ["lua+peer"]], "lua": { "app": "main", "peer": "peer" } }"##,
    );
    app.file(
        "peer.lua",
        r##"stage.waitfor("count", function (n) print("peer got", n) stage.exit() end)"##,
    );
    app.file(
        "main.lua",
        r##"
stage.waitfor("stored", function (r)
  print("app got", r.Z)
  stage.signal("rank:t?q=peer:count", 0)
end)
stage.signal("rank:s?q=stored", { Z = { i = 9 } })
"##,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        ["app got\t1", "peer got\t1"],
        "stderr:\n{}",
        out.stderr
    );
    // No "dir": the files are in the application directory itself.
    assert!(app.path().join("q.0000000001.log").is_file());
}

/// Replies build their short strings from a per-state cache of recent strings: entries read
/// again and again must still follow every change of IDs and values at their ranks.
#[test]
fn a_ranking_read_again_and_again_follows_every_change() {
    let top3 = r#"{[1]={d=1,i=5,k="A",v="a"},[2]={d=2,i=4,k="B",v="b"},[3]={d=3,i=3,k="C"}}"#;
    let app = app(
        "rank",
        "{}",
        r##"
step("rank:s?t=cb", { A = { i = 5, v = "a" } })
step("rank:s?t=cb", { B = { i = 4, v = "b" } })
step("rank:s?t=cb", { C = { i = 3 } })
for _ = 1, 3 do step("rank:f?t=cb", { 1, 3 }) end
step("rank:s?t=cb", { D = { i = 9, v = "a" } })
step("rank:s?t=cb", { A = { v = "z" } })
step("rank:f?t=cb", { 1, 3 })
step("rank:d?t/=cb", "B")
step("rank:f?t=cb", { 1, 3 })
go()
"##,
    );
    expect(
        &app,
        &[
            "rank:s?t=cb {A=1}",
            "rank:s?t=cb {B=2}",
            "rank:s?t=cb {C=3}",
            &format!("rank:f?t=cb {top3}"),
            &format!("rank:f?t=cb {top3}"),
            &format!("rank:f?t=cb {top3}"),
            "rank:s?t=cb {D=1}",
            "rank:s?t=cb {A=-1}",
            r#"rank:f?t=cb {[1]={d=1,i=9,k="D",v="a"},[2]={d=2,i=5,k="A",v="z"},[3]={d=3,i=4,k="B",v="b"}}"#,
            "rank:d?t/=cb {B=true}",
            r#"rank:f?t=cb {[1]={d=1,i=9,k="D",v="a"},[2]={d=2,i=5,k="A",v="z"},[3]={d=3,i=3,k="C"}}"#,
        ],
    );
}
