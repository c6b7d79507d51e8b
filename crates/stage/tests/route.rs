//! The `=route` service through the real binary: every example and acceptance test of
//! `spec/route.md`, with its recommendations D2–D9 and decision 36 (probe answers are replies
//! to the probe handler call).
//!
//! Stages: `front` publishes, `w1` and `w2` subscribe. Subscribers register, then tell `front`
//! they are ready; every script ends itself with `stage.exit()` once it has seen what it waits
//! for, and timing is measured inside the scripts with `process.tick`.

mod common;
use common::{App, Output};
use std::time::Duration;

/// `process.tick` in whole milliseconds, for the scripts.
const PRELUDE: &str = "function ms() return math.floor(process.tick * 1000 + 0.5) end\n";

/// A subscriber that accepts every probe.
const ACCEPT: &str =
    "stage.waitfor(\"route:@\", function (target, token) stage.signal(nil, token) end)\n";

fn app(front: &str, w1: &str, w2: &str) -> App {
    let app = App::new();
    app.file(
        "stage.json",
        r##"{ "#startup": [["=route+route"], ["lua+front", "lua+w1", "lua+w2"]],
             "lua": {"front": "front", "w1": "w1", "w2": "w2"} }"##,
    );
    for (name, script) in [("front", front), ("w1", w1), ("w2", w2)] {
        app.file(&format!("{name}.lua"), &format!("{PRELUDE}{script}"));
    }
    app
}

fn run(front: &str, w1: &str, w2: &str) -> Output {
    app(front, w1, w2).run_args(&["run", "."])
}

/// The WARN lines the service logged.
fn warnings(out: &Output) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("route:"))
        .collect()
}

#[test]
fn unicast_probes_then_delivers_with_the_publisher_as_return_address() {
    // §6.3, §6.4 example, acceptance 1; without `=return` the answer comes back under the
    // subscriber's callback id (D5).
    let out = run(
        r#"
stage.waitfor("on_reply", function (answer)
  print("on_reply", answer)
  stage.signal("route:chatting", "again")
end)
stage.waitfor("on_chat", function (answer) print("returned under on_chat", answer) stage.exit() end)
stage.waitfor("ready", function () stage.signal("route:chatting?user42=on_reply", "hello") end)
"#,
        r#"
stage.waitfor("route:@", function (target, token)
  print("probe", target, token:match("^r%x+%+%d+$") ~= nil, _WAITFOR[0], type(_WAITFOR[1]), _WAITFOR[2])
  stage.signal(nil, token)
end)
stage.waitfor("on_chat", function (request_key, value)
  print("on_chat", request_key, value, _WAITFOR[0], _WAITFOR[2])
  return "got " .. value
end)
stage.signal("route:@", { chatting = "on_chat", notice = "on_chat" })
stage.signal("front:ready")
"#,
        "",
    );
    assert_eq!(
        out.lines(),
        [
            "probe\tchatting?user42=on_reply\ttrue\troute:@\tstring\tnil",
            "on_chat\troute:chatting?user42=on_reply\thello\ton_chat=on_reply\tfront",
            "on_reply\tgot hello",
            "probe\tchatting\ttrue\troute:@\tstring\tnil",
            "on_chat\troute:chatting\tagain\ton_chat\tfront",
            "returned under on_chat\tgot again",
        ],
        "{}",
        out.stderr
    );
    assert!(warnings(&out).is_empty(), "{}", out.stderr);
}

/// `front` publishes `count` messages to `chat` once both workers are ready, then a broadcast
/// `done` whose answers arrive after every earlier answer; prints who took how many.
fn front_counting(count: u32) -> String {
    format!(
        r#"
ready, replies, dones, counts = 0, 0, 0, {{}}
stage.waitfor("ready", function ()
  ready = ready + 1
  if ready == 2 then for i = 1, {count} do stage.signal("route:chat=on_reply", i) end end
end)
stage.waitfor("on_reply", function (who)
  replies = replies + 1
  counts[who] = (counts[who] or 0) + 1
  if replies == {count} then stage.signal("route:*done=on_done") end
end)
stage.waitfor("on_done", function ()
  dones = dones + 1
  if dones == 2 then print("replies", replies, "w1", counts.w1 or 0, "w2", counts.w2 or 0) stage.exit() end
end)
"#
    )
}

fn worker(me: &str, accepts: bool) -> String {
    format!(
        r#"{}
stage.waitfor("on_chat", function () return "{me}" end)
stage.waitfor("on_done", function () return "done" end)
stage.signal("route:@", {{ chat = "on_chat", done = "on_done" }})
stage.signal("front:ready")
"#,
        if accepts { ACCEPT } else { "" }
    )
}

#[test]
fn exactly_one_subscriber_takes_each_message() {
    // Acceptance 2: both accept, each message reaches exactly one of them.
    let out = run(
        &front_counting(50),
        &worker("w1", true),
        &worker("w2", true),
    );
    let lines = out.lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(fields[..2], ["replies", "50"], "{}", lines[0]);
    let w1: u32 = fields[3].parse().unwrap_or(99);
    let w2: u32 = fields[5].parse().unwrap_or(99);
    assert_eq!(w1 + w2, 50, "{}", lines[0]);
}

#[test]
fn a_subscriber_that_declines_never_receives() {
    // Acceptance 3: w1 never answers its probes, so every message reaches w2.
    let out = run(
        &front_counting(20),
        &worker("w1", false),
        &worker("w2", true),
    );
    assert_eq!(
        out.lines(),
        ["replies\t20\tw1\t0\tw2\t20"],
        "{}",
        out.stderr
    );
}

#[test]
fn no_subscriber_fails_at_once_and_an_unanswered_probe_fails_after_the_timeout() {
    // §6.5 example, acceptance 4 and 5.
    let out = run(
        r#"
sent = nil
stage.waitfor("r_fail", function (request_key, value)
  print("ROUTE FAIL", request_key, value, ms() - sent < 250 or ms() - sent)   -- at once: well before a probe timeout
  sent = ms()
  stage.signal("route:chat!on_fail", "y")
end)
stage.waitfor("on_fail", function (request_key, value)
  local took = ms() - sent
  print("on_fail", request_key, value, (took >= 298 and took < 5000) or took)   -- the 300 ms probe timeout (ms clocks round), late only by load
  stage.exit()
end)
stage.waitfor("ready", function () sent = ms() stage.signal("route:login!r_fail", "HELLO") end)
"#,
        r#"
stage.waitfor("route:@", function () print("probed") end)
stage.waitfor("on_chat", function () print("on_chat called!") end)
stage.signal("route:@", { chat = "on_chat" })
stage.signal("front:ready")
"#,
        "",
    );
    assert_eq!(
        out.lines(),
        [
            "ROUTE FAIL\troute:login!r_fail\tHELLO\ttrue",
            "probed",
            "on_fail\troute:chat!on_fail\ty\ttrue"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn broadcast_reaches_every_subscriber_without_probes_with_every_value() {
    // §6.6, acceptance 6, D6 (all values forwarded).
    let worker = |me: &str| {
        format!(
            r#"
stage.waitfor("route:@", function () print("{me} probed!") end)
stage.waitfor("on_news", function (request_key, a, b)
  print("{me}", request_key, a, b)
  stage.signal("front:got")
end)
stage.signal("route:@", {{ news = "on_news" }})
stage.signal("front:ready")
"#
        )
    };
    let out = run(
        r#"
ready, got = 0, 0
stage.waitfor("ready", function () ready = ready + 1 if ready == 2 then stage.signal("route:*news", "n", "m") end end)
stage.waitfor("got", function () got = got + 1 if got == 2 then stage.exit() end end)
"#,
        &worker("w1"),
        &worker("w2"),
    );
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(
        lines,
        ["w1\troute:*news\tn\tm", "w2\troute:*news\tn\tm"],
        "{}",
        out.stderr
    );
}

/// `front` runs `steps` one after another: `{"set", v}` makes w1 send `route:@ v` (`"NIL"` for
/// nil), `{"pub", value}` publishes `route:chat!f value` and waits for the delivery or the
/// failure, `{"wait", ms}` waits. At the end it prints the log of outcomes.
const STEPS: &str = r#"
i, log = 0, {}
function next_step()
  i = i + 1
  local s = steps[i]
  if s == nil then print(table.concat(log, " ")) stage.exit()
  elseif s[1] == "set" then stage.signal("w1:set", s[2])
  elseif s[1] == "pub" then stage.signal("route:chat!f", s[2])
  else stage.addtask(s[2], function () next_step() end) end
end
stage.waitfor("step", function () next_step() end)
stage.waitfor("got", function (cb, v) log[#log + 1] = cb .. ":" .. v next_step() end)
stage.waitfor("f", function (k, v) log[#log + 1] = "fail:" .. v next_step() end)
"#;

/// A subscriber driven by [`STEPS`], with callbacks `a` and `b`.
const STEPPED: &str = r#"
stage.waitfor("route:@", function (target, token) stage.signal(nil, token) end)
stage.waitfor("set", function (v)
  if v == "NIL" then v = nil end
  stage.signal("route:@", v)
  stage.signal("front:step")
end)
stage.waitfor("a", function (k, v) stage.signal("front:got", "a", v) end)
stage.waitfor("b", function (k, v) stage.signal("front:got", "b", v) end)
stage.signal("route:@", { chat = "a" })
stage.signal("front:step")
"#;

#[test]
fn subscriptions_are_enabled_disabled_paused_replaced_and_removed() {
    // Acceptance 7, 8 (shortened pause) and 10 with D8 (a new callback replaces the old one),
    // D3 (`""` removes), D2 (an integer pauses the whole registrant, which survives), D4
    // (`nil` removes the registration completely, so registering again works), keep-alive.
    let out = run(
        &format!(
            r#"{STEPS}
steps = {{
  {{"pub", 1}},
  {{"set", {{ chat = false }}}}, {{"pub", 2}},
  {{"set", {{ chat = true }}}}, {{"pub", 3}},
  {{"set", {{ chat = "b" }}}}, {{"pub", 4}},
  {{"set", {{ chat = "" }}}}, {{"pub", 5}},
  {{"set", {{ chat = "a", other = "b" }}}}, {{"pub", 6}},
  {{"set", 300}}, {{"pub", 7}}, {{"wait", 350}}, {{"pub", 8}},
  {{"set", "NIL"}}, {{"pub", 9}},
  {{"set", {{ chat = "a" }}}}, {{"pub", 10}},
  {{"set", true}}, {{"pub", 11}},
  {{"set", {{ chat = 500 }}}}, {{"pub", 12}}, {{"wait", 300}}, {{"pub", 13}}, {{"wait", 250}}, {{"pub", 14}},
}}
"#
        ),
        STEPPED,
        "",
    );
    assert_eq!(
        out.lines(),
        ["a:1 fail:2 a:3 b:4 fail:5 a:6 fail:7 a:8 fail:9 a:10 a:11 fail:12 fail:13 a:14"],
        "{}",
        out.stderr
    );
    assert!(warnings(&out).is_empty(), "{}", out.stderr);
}

#[test]
fn groups_catch_what_no_specific_subscriber_takes() {
    // §6.2, acceptance 11, D9.
    let out = run(
        r#"
ready, log, n = 0, {}, 0
pubs = { "game.kr.login", "game.kr.other", "game.login", "gamex" }
function publish() n = n + 1 if pubs[n] then stage.signal("route:" .. pubs[n] .. "!f", n) else print(table.concat(log, " ")) stage.exit() end end
stage.waitfor("ready", function () ready = ready + 1 if ready == 2 then publish() end end)
stage.waitfor("got", function (who, request_key) log[#log + 1] = who .. "<" .. request_key publish() end)
stage.waitfor("f", function (request_key) log[#log + 1] = "fail<" .. request_key publish() end)
"#,
        &format!(
            r#"{ACCEPT}
stage.waitfor("on_game", function (request_key) stage.signal("front:got", "w1", request_key) end)
stage.signal("route:@", {{ ["game."] = "on_game" }})
stage.signal("front:ready")
"#
        ),
        &format!(
            r#"{ACCEPT}
stage.waitfor("on_login", function (request_key) stage.signal("front:got", "w2", request_key) end)
stage.signal("route:@", {{ ["game.kr.login"] = "on_login" }})
stage.signal("front:ready")
"#
        ),
    );
    assert_eq!(
        out.lines(),
        ["w2<route:game.kr.login!f w1<route:game.kr.other!f w1<route:game.login!f fail<route:gamex!f"],
        "{}",
        out.stderr
    );
}

#[test]
fn an_answer_can_select_callbacks_and_one_probe_goes_to_each_registrant() {
    // Acceptance 12.
    let out = run(
        r#"
log = {}
stage.waitfor("ready", function () stage.signal("route:a,b", "first") end)
stage.waitfor("got", function (cb, v, probes)
  log[#log + 1] = cb .. ":" .. v .. ":" .. probes
  if #log == 1 then stage.signal("route:a,b", "second") end
  if #log == 3 then print(table.concat(log, " ")) stage.exit() end
end)
"#,
        r#"
probes = 0
stage.waitfor("route:@", function (target, token)
  probes = probes + 1
  if probes == 1 then stage.signal(nil, token .. "?cb") else stage.signal(nil, token) end
end)
stage.waitfor("ca", function (k, v) stage.signal("front:got", "ca", v, probes) end)
stage.waitfor("cb", function (k, v) stage.signal("front:got", "cb", v, probes) end)
stage.signal("route:@", { a = "ca", b = "cb" })
stage.signal("front:ready")
"#,
        "",
    );
    assert_eq!(
        out.lines(),
        ["cb:first:1 ca:second:2 cb:second:2"],
        "{}",
        out.stderr
    );
}

#[test]
fn registrations_expire_without_keep_alive() {
    // §5, acceptance 9: w1 registers once and stays silent; w2 sends `true` every 10 s. At 29 s
    // both still take messages, at 31 s only w2 does.
    let front = r#"
ready, log = 0, {}
function check(tag)
  stage.signal("route:one!f", tag)
  stage.signal("route:two!f", tag)
end
stage.waitfor("ready", function ()
  ready = ready + 1
  if ready == 2 then
    stage.addtask(29000, function () check("29s") end)
    stage.addtask(31000, function () check("31s") end)
  end
end)
stage.waitfor("got", function (who, v) log[#log + 1] = who .. ":" .. v if #log == 4 then print(table.concat(log, " ")) stage.exit() end end)
stage.waitfor("f", function (k, v) log[#log + 1] = "fail:" .. k:match(":(%a+)!") .. ":" .. v if #log == 4 then print(table.concat(log, " ")) stage.exit() end end)
"#;
    let subscriber = |me: &str, id: &str, keep_alive: bool| {
        let keep = if keep_alive {
            "stage.addtask(10000, function () stage.signal(\"route:@\", true) return 10000 end)"
        } else {
            ""
        };
        format!(
            r#"{ACCEPT}
stage.waitfor("on", function (k, v) stage.signal("front:got", "{me}", v) end)
stage.signal("route:@", {{ {id} = "on" }})
{keep}
stage.signal("front:ready")
"#
        )
    };
    let app = app(
        front,
        &subscriber("w1", "one", false),
        &subscriber("w2", "two", true),
    );
    let mut running = app.start(&["run", "."]);
    let line = running.wait_stdout(Duration::from_secs(45), |_| true);
    let mut parts: Vec<&str> = line.split(' ').collect();
    parts[..2].sort();
    parts[2..].sort();
    assert_eq!(
        parts,
        ["w1:29s", "w2:29s", "fail:one:31s", "w2:31s"],
        "{line}"
    );
    running.wait_exit(Duration::from_secs(10));
}

#[test]
fn bad_input_is_one_warning_each_and_changes_nothing() {
    let out = run(
        r#"
stage.waitfor("ready", function ()
  stage.signal("route:chat!", 1)
  stage.signal("route:@", true)
  stage.signal("route:chat=on_reply", "still works")
end)
stage.waitfor("on_reply", function (v) print(v) stage.exit() end)
"#,
        &format!(
            r#"{ACCEPT}
stage.waitfor("on_chat", function (k, v) return v end)
stage.signal("route:@", false)
stage.signal("route:@", {{ chat = 1.5 }})
stage.signal("route:@", {{ ["a?b"] = "x" }})
stage.signal("route:@", "nonsense")
stage.signal("route:@", 2.5)
stage.signal("route:@", {{ chat = "on_chat" }})
stage.signal("front:ready")
"#
        ),
        "",
    );
    assert_eq!(out.lines(), ["still works"], "{}", out.stderr);
    let warns = warnings(&out);
    let expected = [
        "`route:@` does not take a boolean value",
        "entry `chat` ignored: a number is not a callback",
        "invalid subscription id `a?b`",
        "malformed route probe answer `nonsense`",
        "`route:@` does not take a non-integral number value",
        "malformed route key `chat!`",
        "no route registration for this stage",
    ];
    assert_eq!(warns.len(), expected.len(), "{}", out.stderr);
    for text in expected {
        assert!(
            warns.iter().any(|w| w.contains(text)),
            "no warning names {text:?}:\n{}",
            out.stderr
        );
    }
}
