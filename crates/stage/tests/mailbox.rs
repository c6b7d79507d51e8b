//! Messages from other stages, which a stage thread takes from its mailbox in batches
//! (`fastpath.rs`): order, handlers changed by an earlier message of the same batch, errors,
//! invocation globals, `_WAITFOR` and automatic replies, through the real binary.

mod common;
use common::App;

/// A stage `receiver` and a stage `sender`; the sender's burst starts with a message whose
/// handler keeps the receiver busy for 50 ms, so that the rest of the burst waits in the
/// receiver's mailbox and is taken as one batch.
const BURST: &str = r#"
stage.waitfor("go", function ()
  stage.signal("receiver:hold")
  stage.signal("receiver:plain", "a")
  stage.signal("receiver:change")
  stage.signal("receiver:gone", "never")
  stage.signal("receiver:late", "v")
  stage.signal("receiver:fail")
  stage.signal("receiver:info=extra", 1)
  stage.signal("receiver:multi", 1, nil, "x")
  stage.signal("receiver:table", { k = "t" })
  stage.signal("receiver:ask", "ping")
end)
stage.waitfor("ask", function (...) print("reply", ...) stage.exit() end)
"#;

const RECEIVER: &str = r##"
stage.waitfor("hold", function ()
  local t = process.tick
  while process.tick - t < 0.05 do end
end)
stage.waitfor("plain", function (v) print("plain", v) end)
stage.waitfor("change", function ()
  stage.waitfor("gone", nil)
  stage.waitfor("late", function (arg, v) print("late", arg, v) end, "ARG")
end)
stage.waitfor("gone", function (v) print("gone", v) end)
stage.waitfor("fail", function () error("boom in a batch") end)
stage.waitfor("info", function (n)
  print("info", n, _WAITFOR[0], _WAITFOR[-1], _WAITFOR[2], type(_WAITFOR[1]))
end)
stage.waitfor("multi", function (...) print("multi", select("#", ...), ...) end)
stage.waitfor("table", function (t) print("table", t.k) end)
stage.waitfor("ask", function (v) print("asked", v, _WAITFOR[2]) return "pong", 2 end)
stage.signal("sender:go")
"##;

#[test]
fn a_burst_from_another_stage_is_handled_in_order_with_changes_errors_and_replies() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["lua+receiver"], ["lua+sender"]], "lua": { "receiver": "receiver", "sender": "sender" } }"##,
    );
    app.file("receiver.lua", RECEIVER);
    app.file("sender.lua", BURST);
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        [
            "plain\ta",
            // `gone` was unregistered and `late` registered (with an argument) by `change`.
            "late\tARG\tv",
            "info\t1\tinfo=extra\tinfo\tsender\tstring",
            "multi\t3\t1\tnil\tx",
            "table\tt",
            "asked\tping\tsender",
            "reply\tpong\t2",
        ],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("boom in a batch"), "{}", out.stderr);
}

#[test]
fn invocation_globals_are_restored_after_each_message_also_after_an_error() {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["=ticket+ticket"], ["lua+app"]],
             "=ticket+ticket": [100, {"room": 10}],
             "lua": {"app": "main"} }"##,
    );
    app.file(
        "main.lua",
        r#"
SEEN = {}
stage.waitfor("got", function (n)
  SEEN[n] = _TICKET
  stage.signal(nil, 0)
  if n == 1 then error("failing grant callback") end
  if n == 3 then stage.signal("check") end
end)
stage.waitfor("check", function ()
  print("tickets", type(SEEN[1]), type(SEEN[2]), type(SEEN[3]), SEEN[1] ~= SEEN[2])
  print("after", _TICKET)
  stage.exit()
end)
for n = 1, 3 do stage.signal("ticket:room=got", n) end
-- The three grants wait in the mailbox meanwhile, to be taken as one batch.
local t = process.tick
while process.tick - t < 0.05 do end
"#,
    );
    let out = app.run_args(&["run", "."]);
    assert_eq!(
        out.lines(),
        ["tickets\tstring\tstring\tstring\ttrue", "after\tnil"],
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("failing grant callback"),
        "{}",
        out.stderr
    );
}
