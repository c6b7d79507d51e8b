//! Messages from other stages, which a stage thread takes from its mailbox in batches
//! (`messaging/fast.rs`): order across the runs the fast path takes and the messages the runtime
//! delivers, handlers changed by an earlier message of the same run, errors, `_WAITFOR`,
//! automatic replies, sends and replies of every kind of value, through the real binary.
//! Invocation globals in a batch are tested with the ticket service (`ticket.rs`).

mod common;
use common::App;

/// A stage `receiver` and a stage `sender`; the sender's burst starts with a message whose
/// handler keeps the receiver busy for 50 ms, so that the rest of the burst waits in the
/// receiver's mailbox and is taken as one batch.
const BURST: &str = r#"
stage.waitfor("go", function ()
  stage.signal("receiver:hold")
  stage.signal("receiver:table", { k = "t" })
  stage.signal("receiver:plain", "a")
  stage.signal("receiver:change")
  stage.signal("receiver:gone", "never")
  stage.signal("receiver:late", "v")
  stage.signal("receiver:fail")
  stage.signal("receiver:info=extra", 1)
  stage.signal("receiver:multi", 1, nil, "x")
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
  print("change")
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

/// A stage `receiver` and a stage `sender` with the given limits.
fn two_stages(limits: &str, receiver: &str, sender: &str) -> common::Output {
    let app = App::new();
    app.file(
        "stage.json",
        &format!(
            r##"{{ "#startup": [["lua+receiver"], ["lua+sender"]], "#limits": {limits},
                 "lua": {{ "receiver": "receiver", "sender": "sender" }} }}"##
        ),
    );
    app.file("receiver.lua", receiver);
    app.file("sender.lua", sender);
    app.run_args(&["run", "."])
}

#[test]
fn a_burst_from_another_stage_is_handled_in_order_with_changes_errors_and_replies() {
    let out = two_stages("{}", RECEIVER, BURST);
    assert_eq!(
        out.lines(),
        [
            "table\tt",
            "plain\ta",
            "change",
            // `gone` was unregistered and `late` registered (with an argument) by `change`.
            "late\tARG\tv",
            "info\t1\tinfo=extra\tinfo\tsender\tstring",
            "multi\t3\t1\tnil\tx",
            "asked\tping\tsender",
            "reply\tpong\t2",
        ],
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("boom in a batch"), "{}", out.stderr);
}

#[test]
fn sends_and_replies_to_other_stages_copy_every_kind_of_value_and_raise_at_the_sender() {
    let receiver = r#"
stage.waitfor("run", function (f, x) print("run", f(x)) end)
stage.waitfor("t", function (t) print("t", t.n, t.list[2]) end)
stage.waitfor("ask", function (kind)
  if kind == "plain" then stage.signal(nil, "r", 1.5, true, nil)
  elseif kind == "table" then stage.signal(nil, { k = "v" })
  else stage.signal(nil, function (y) return y + 1 end) end
end)
stage.signal("sender:go")
"#;
    let sender = r##"
stage.waitfor("go", function ()
  local ok, err = pcall(stage.signal, "receiver:t", string.rep("x", 2000))
  print(ok, err:match("too large") ~= nil)
  local cyclic = {} cyclic.me = cyclic
  ok, err = pcall(function () stage.signal("receiver:t", cyclic) end)
  print(ok, err)
  stage.signal("receiver:t", { n = 1, list = { "a", "b" } })
  stage.signal("receiver:run", function (x) return x * 2 end, 21)
  stage.signal("receiver:ask", "plain")
end)
N = 0
stage.waitfor("ask", function (...)
  N = N + 1
  local a = ...
  if N == 1 then
    print("reply", select("#", ...), ...)
    stage.signal("receiver:ask", "table")
  elseif N == 2 then
    print("reply table", a.k)
    stage.signal("receiver:ask", "function")
  else
    print("reply function", a(1))
    stage.exit()
  end
end)
"##;
    let out = two_stages(r#"{ "message_bytes": 1000 }"#, receiver, sender);
    assert_eq!(
        out.lines(),
        [
            "false\ttrue",
            "false\tsender.lua:6: a table refers to itself: cyclic tables cannot be copied",
            "t\t1\tb",
            "run\t42",
            "reply\t4\tr\t1.5\ttrue\tnil",
            "reply table\tv",
            "reply function\t2",
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn a_full_mailbox_of_another_stage_raises_at_the_sender() {
    let receiver = r#"
stage.waitfor("m", function (i) print("m", i) if i == 3 then stage.signal("sender:done") end end)
stage.signal("sender:go")
-- Busy in its main script: its mailbox fills meanwhile.
local t = process.tick
while process.tick - t < 0.3 do end
"#;
    let sender = r#"
stage.waitfor("go", function ()
  for i = 1, 3 do stage.signal("receiver:m", i) end
  local ok, err = pcall(function () stage.signal("receiver:m", 4) end)
  print(ok, err)
end)
stage.waitfor("done", function () stage.exit() end)
"#;
    let out = two_stages(r#"{ "mailbox": 3 }"#, receiver, sender);
    assert_eq!(
        out.lines(),
        [
            "false\tsender.lua:4: the mailbox of 'receiver' is full (3 messages waiting)",
            "m\t1",
            "m\t2",
            "m\t3",
        ],
        "{}",
        out.stderr
    );
}
