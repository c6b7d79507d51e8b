//! The `bundle` library through the real binary: every example of `runtime.md` §9.11, and the
//! `stage.*` aliases of the bundle functions.

mod common;
use common::App;

fn run(script: &str) -> common::Output {
    App::script(script).run(&[])
}

#[test]
fn json_spec_example_with_integer_numbers() {
    let out = run(r#"
local t = bundle.json('{"a": {"b": [10, 20, 30]}, "name": "x"}')
print(t.name, #t.a.b)
local s = bundle.json('{"a": {"b": [10, 20, 30]}}', { second = "a.b.#1" })
print(s.second)
print(bundle.json({ n = 1 }))
print(math.type(bundle.json("[1, 1.0, 1e2]")[2]), bundle.json({}))
stage.exit()
"#);
    assert_eq!(
        out.stdout, "x\t3\n20\n{\n   \"n\" : 1\n}\n\nfloat\t{}\n\n",
        "{}",
        out.stderr
    );
}

#[test]
fn json_reads_files_relative_to_the_application() {
    let app = App::script(
        r#"print(bundle.json("conf/data.json", "who")) print(stage.json(" conf/data.json").n) stage.exit()"#,
    );
    app.file("conf/data.json", r#"{ "who": "ann", "n": 3 }"#);
    let out = app.run(&[]);
    assert_eq!(out.lines(), ["ann", "3"], "{}", out.stderr);
}

#[test]
fn bson_spec_example_and_bad_input() {
    let out = run(r#"
local b = bundle.bson({ name = "HELLO", list = { 1, 2 } })
local t = bundle.bson(b)
print(type(b), t.name, t.list[2])
print(pcall(bundle.bson, "not bson at all"))
stage.exit()
"#);
    let lines = out.lines();
    assert_eq!(lines[0], "string\tHELLO\t2", "{}", out.stderr);
    assert!(
        lines[1].starts_with("false\t") && lines[1].contains("This is not BSON data."),
        "{lines:?}"
    );
}

#[test]
fn random_spec_example_and_ranges() {
    let out = run(r#"
local R = { [""] = 42 }
local a = bundle.random(R, 1, 1000)
local R2 = { [""] = 42 }
print(a == bundle.random(R2, 1, 1000), R[0] ~= nil, R[""])
local ok = true
for i = 1, 1000 do local v = bundle.random(R, 3, 5) ok = ok and v >= 3 and v <= 5 end
print(ok, pcall(bundle.random, R, 5, 1))
local f = bundle.random()
print(f >= 0 and f < 1)
stage.exit()
"#);
    let lines = out.lines();
    assert_eq!(lines[0], "true\ttrue\tnil", "{}", out.stderr);
    assert!(
        lines[1].starts_with("true\tfalse\t") && lines[1].contains("interval is empty"),
        "{lines:?}"
    );
    assert_eq!(lines[2], "true");
}

#[test]
fn proxy_spec_example() {
    let out = run(r#"
local T = { score = 5 }
local p = bundle.proxy(T, {
  score = { 10, 20, 30, function (px, crossed, k, v)
    print("crossed", k, v, table.concat(crossed, ","))
  end },
  name = function (px, old, k, v)
    if v == "" then return false end
    print("rename", old, v)
  end,
})
p.score = 25
p.score = 12
p.score = 35
p.name = "ann"
p.name = ""
print(T.score, T.name)
stage.exit()
"#);
    assert_eq!(
        out.lines(),
        [
            "crossed\tscore\t25\t10,20",
            "crossed\tscore\t35\t20,30",
            "rename\tnil\tann",
            "35\tann"
        ],
        "{}",
        out.stderr
    );
}

#[test]
fn viewof_spec_example_persists_after_commit() {
    let app = App::script(
        r#"
local v = bundle.viewof({ "people.bin", { "c8 i" } }, 3)
v[2] = { "ann", 41 }
print(v.size, v.count, v[2][2])
v.commit("sync")
v[3] = { "bob", 7 }
v.rollback()
print(v[3][2])
stage.exit()
"#,
    );
    let out = app.run(&[]);
    assert_eq!(out.lines(), ["12\t3\t41", "0"], "{}", out.stderr);
    let bytes = std::fs::read(app.path().join("people.bin")).expect("the view's file");
    assert_eq!(bytes.len(), 36);
    assert_eq!(&bytes[12..15], b"ann");
    assert_eq!(
        i32::from_ne_bytes(bytes[20..24].try_into().expect("4 bytes")),
        41
    );
}

#[test]
fn bundle_functions_are_also_stage_functions() {
    let out = run(r#"
print(stage.json == bundle.json, stage.bson == bundle.bson, stage.random == bundle.random,
      stage.proxy == bundle.proxy, stage.viewof == bundle.viewof)
stage.exit()
"#);
    assert_eq!(
        out.lines(),
        ["true\ttrue\ttrue\ttrue\ttrue"],
        "{}",
        out.stderr
    );
}
