//! The command layer against every example and acceptance test of `spec/index.md`.

mod common;

use common::{list, st, TestCodec};
use stage_core::{Key, Table, Value};
use stage_index::command::{Command, Commands, Problem, Request, Target, TargetError, TierPath};
use stage_index::{Config, Index, Tier};
use std::time::Instant;

/// Sorts table keys recursively so that replies compare like Lua tables (unordered).
fn norm(v: Value) -> Value {
    match v {
        Value::Table(t) => {
            let mut e: Vec<(Key, Value)> = t.0.into_iter().map(|(k, v)| (k, norm(v))).collect();
            e.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Table(Table(e))
        }
        v => v,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    index: Index,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = Index::new(Config {
            dir: dir.path().to_path_buf(),
            ..Config::default()
        });
        Fixture { _dir: dir, index }
    }
    fn reopen(self) -> Fixture {
        let config = self.index.config().clone();
        drop(self.index);
        Fixture {
            _dir: self._dir,
            index: Index::new(config),
        }
    }
    /// Sends `arg` to `id` and returns the normalised reply value (asserting the callback).
    fn call(&self, id: &str, arg: Value) -> Value {
        let codec = TestCodec;
        let reply = Commands::new(&self.index, &codec).handle(id, &arg);
        norm(reply.value)
    }
    fn check(&self, id: &str, arg: Value, want: Value) {
        assert_eq!(self.call(id, arg), norm(want), "message {id}");
    }
}

fn row(k: &str, v: Value, i: Value, d: i64) -> Value {
    let mut t = vec![(Key::from("k"), st(k))];
    if v != Value::Nil {
        t.push((Key::from("v"), v));
    }
    t.push((Key::from("i"), i));
    t.push((Key::from("d"), Value::Int(d)));
    Value::Table(Table(t))
}

fn di(d: i64, i: Value) -> Value {
    tbl![("d", d), ("i", i)]
}

#[test]
fn message_ids_parse_as_the_spec_says() {
    let t = |c, f: &str, tier| Target {
        command: c,
        file: f.into(),
        tier,
    };
    let one = |n| TierPath::One(Tier::new(n).expect("tier"));
    assert_eq!(
        Request::parse("s?rank=on_set"),
        Request::Single {
            target: Ok(t(Command::Set, "rank", TierPath::Default)),
            callback: Some("on_set".into())
        }
    );
    assert_eq!(
        Request::parse("garbage?season3/pvp/2"),
        Request::Single {
            target: Ok(t(Command::Get, "season3/pvp", one(2))),
            callback: None
        }
    );
    assert_eq!(
        Request::parse("d?rank/=cb"),
        Request::Single {
            target: Ok(t(Command::Del, "rank", TierPath::All)),
            callback: Some("cb".into())
        }
    );
    assert_eq!(
        Request::parse("forEach?rank/0"),
        Request::Single {
            target: Ok(t(Command::ForEach, "rank", TierPath::All)),
            callback: None
        }
    );
    assert_eq!(
        Request::parse("s?rank/5=cb"),
        Request::Single {
            target: Err(TargetError::NoSuchTier("5".into())),
            callback: Some("cb".into())
        }
    );
    assert_eq!(
        Request::parse("x?rank=cb"),
        Request::Single {
            target: Err(TargetError::UnknownCommand("x".into())),
            callback: Some("cb".into())
        }
    );
    assert_eq!(
        Request::parse("on_batch"),
        Request::Batch {
            callback: Some("on_batch".into())
        }
    );
    assert_eq!(Request::parse(""), Request::Batch { callback: None });
    assert_eq!(
        Target::parse("total:rank/3"),
        Ok(t(Command::Total, "rank", one(3)))
    );
    assert_eq!(Target::parse("get rank"), Err(TargetError::NoSeparator));
    assert_eq!(Target::parse("get?/2"), Err(TargetError::NoFile));
}

#[test]
fn short_form_example_and_callback_placement() {
    let f = Fixture::new();
    let codec = TestCodec;
    let cmds = Commands::new(&f.index, &codec);
    let reply = cmds.handle(
        "s?rank=on_set",
        &tbl![("KR0001", tbl![("i", 1120), ("v", tbl![("name", "HELLO")])])],
    );
    assert_eq!(reply.callback.as_deref(), Some("on_set"));
    assert_eq!(reply.value, tbl![("KR0001", 1)]);
    // Acceptance 12: without a callback the command runs and nothing is to be sent.
    let reply = cmds.handle("s?rank", &tbl![("KR0002", tbl![("i", 5)])]);
    assert_eq!(reply.callback, None);
    f.check(
        "g?rank=cb",
        list(vec![st("KR0001"), st("KR0002")]),
        tbl![
            (
                "KR0001",
                tbl![
                    ("v", tbl![("name", "HELLO")]),
                    ("I", list(vec![di(1, 1120.into())]))
                ]
            ),
            ("KR0002", tbl![("I", list(vec![di(2, 5.into())]))]),
        ],
    );
    // An invalid tier or command replies nil.
    f.check("s?rank/7=cb", tbl![("A", tbl![("i", 1)])], Value::Nil);
    f.check("q?rank=cb", Value::Int(0), Value::Nil);
    f.check("g?../up=cb", st("A"), Value::Nil);
}

#[test]
fn table_form_example_and_batch_order() {
    let f = Fixture::new();
    f.check(
        "on_batch",
        tbl![
            (
                "#1.set:rank/1",
                tbl![("KR0002", tbl![("i", 100), ("v", "TEST2")])]
            ),
            ("#2.get:rank", list(vec![st("KR0002")])),
        ],
        tbl![
            ("#1.set:rank/1", tbl![("KR0002", 1)]),
            (
                "#2.get:rank",
                tbl![(
                    "KR0002",
                    tbl![("v", "TEST2"), ("I", list(vec![di(1, 100.into())]))]
                )]
            ),
        ],
    );
    // Acceptance 13: `#2.get` listed before `#1.set` still sees the set.
    f.check(
        "cb",
        tbl![
            ("#2.get:rank", st("B")),
            ("#1.set:rank", tbl![("B", tbl![("i", 500), ("v", "b")])]),
            ("t?rank", 0),
            ("not a command", 1),
        ],
        tbl![
            (
                "#2.get:rank",
                tbl![("B", tbl![("v", "b"), ("I", list(vec![di(1, 500.into())]))])]
            ),
            ("#1.set:rank", tbl![("B", 1)]),
            ("t?rank", 2),
        ],
    );
    // The prefix up to the first `.` is dropped: `get:my.file` reads file `file`... which is
    // not a command, so the key has no reply entry.
    f.check("cb", tbl![("get:my.file", st("A"))], tbl![]);
}

#[test]
fn set_replies_rank_zero_or_minus_one() {
    let f = Fixture::new();
    f.check(
        "s?rank=cb",
        tbl![("A", tbl![("i", 10), ("v", "a")])],
        tbl![("A", 1)],
    );
    f.check(
        "s?rank=cb",
        tbl![("B", tbl![("i", 20), ("v", "b")])],
        tbl![("B", 1)],
    );
    f.check("s?rank=cb", tbl![("A", tbl![("i", 10)])], tbl![("A", 0)]);
    f.check("s?rank=cb", tbl![("A", tbl![("v", "a2")])], tbl![("A", -1)]);
    f.check(
        "s?rank/2=cb",
        tbl![("A", tbl![("I", list(vec![5.into(), 7.into()]))])],
        tbl![("A", 1)],
    );
    f.check(
        "g?rank/=cb",
        st("A"),
        tbl![(
            "A",
            tbl![
                ("v", "a2"),
                (
                    "I",
                    tbl![(1, list(vec![5.into()])), (2, list(vec![7.into()]))]
                )
            ]
        )],
    );
    // `i` on the all-tiers path fails that ID; `I` there touches no "request tier".
    f.check("s?rank/=cb", tbl![("A", tbl![("i", 3)])], tbl![]);
    f.check(
        "s?rank/=cb",
        tbl![("A", tbl![("I", tbl![(3, 9)])])],
        tbl![("A", -1)],
    );
    // Integral floats are integers; other floats fail the ID (D3); a cleared tier gives 0.
    f.check("s?rank=cb", tbl![("F", tbl![("i", 50.0)])], tbl![("F", 1)]);
    f.check("s?rank=cb", tbl![("G", tbl![("i", 0.5)])], tbl![]);
    f.check(
        "s?rank=cb",
        tbl![("F", tbl![("i", tbl![])])],
        tbl![("F", 0)],
    );
    // Numeric keys become IDs "#n"; a multi-score list ranks each score (D4).
    // Tier 1 now: B 20, A 5.
    f.check("s?rank=cb", tbl![(5, tbl![("i", 1)])], tbl![(5, 3)]);
    f.check(
        "s?rank=cb",
        tbl![("M", tbl![("i", list(vec![100.into(), 6.into()]))])],
        tbl![("M", 3)],
    );
    f.check(
        "g?rank=cb",
        list(vec![st("#5"), st("M")]),
        tbl![
            ("#5", tbl![("I", list(vec![di(5, 1.into())]))]),
            (
                "M",
                tbl![("I", list(vec![di(1, 100.into()), di(3, 6.into())]))]
            ),
        ],
    );
}

fn abc(f: &Fixture, file: &str) {
    // Acceptance 1 data: A=10, B=200, C=100.
    for (k, s) in [("A", 10), ("B", 200), ("C", 100)] {
        f.call(
            &format!("s?{file}"),
            tbl![(k, tbl![("i", s), ("v", k.to_lowercase())])],
        );
    }
}

#[test]
fn get_del_foreach_examples() {
    let f = Fixture::new();
    f.call("s?rank", tbl![("A", tbl![("i", 10), ("v", "a2")])]);
    f.call("s?rank", tbl![("B", tbl![("i", 20), ("v", "b")])]);
    f.check(
        "g?rank=cb",
        list(vec![st("A"), st("B"), st("ZZ")]),
        tbl![
            ("A", tbl![("v", "a2"), ("I", list(vec![di(2, 10.into())]))]),
            ("B", tbl![("v", "b"), ("I", list(vec![di(1, 20.into())]))]),
            ("ZZ", tbl![]),
        ],
    );
    f.call(
        "s?rank",
        tbl![
            ("C", tbl![("i", 5), ("v", "c")]),
            ("D", tbl![("i", 1), ("v", "d")])
        ],
    );
    f.check(
        "f?rank=cb",
        list(vec![2.into(), 3.into()]),
        tbl![
            (2, row("A", "a2".into(), 10.into(), 2)),
            (3, row("C", "c".into(), 5.into(), 3)),
            (4, row("D", "d".into(), 1.into(), 4)),
        ],
    );
    f.check("f?rank=cb", list(vec![0.into(), 3.into()]), tbl![]);
    f.check("f?rank=cb", list(vec![5.into(), 3.into()]), tbl![]);
    f.check(
        "f?rank=cb",
        list(vec![4.into(), 0.into()]),
        tbl![(4, row("D", "d".into(), 1.into(), 4))],
    );
    f.check("f?rank/=cb", list(vec![1.into(), 3.into()]), tbl![]);
    f.check("d?rank=cb", st("A"), tbl![("A", true)]);
    f.check("g?rank=cb", st("A"), tbl![("A", tbl![("v", "a2")])]);
    f.check("d?rank/=cb", st("A"), tbl![("A", true)]);
    f.check("d?rank/=cb", st("A"), tbl![("A", false)]);
    f.check(
        "d?rank=cb",
        list(vec![st("A"), st("B")]),
        tbl![("A", false), ("B", true)],
    );
}

#[test]
fn acceptance_1_to_11() {
    let f = Fixture::new();
    abc(&f, "t1");
    // 1. ordering
    f.check(
        "f?t1=cb",
        list(vec![1.into(), 3.into()]),
        tbl![
            (1, row("B", "b".into(), 200.into(), 1)),
            (2, row("C", "c".into(), 100.into(), 2)),
            (3, row("A", "a".into(), 10.into(), 3)),
        ],
    );
    // 5. range by score, 6. range around an ID (on a fresh copy of the data)
    abc(&f, "t5");
    f.check(
        "r?t5=cb",
        list(vec![150.into(), 2.into()]),
        tbl![
            (2, row("C", "c".into(), 100.into(), 2)),
            (3, row("A", "a".into(), 10.into(), 3))
        ],
    );
    f.check("r?t5=cb", list(vec![5.into(), 1.into()]), tbl![]);
    f.check(
        "r?t5=cb",
        list(vec![1000.into(), 1.into()]),
        tbl![(1, row("B", "b".into(), 200.into(), 1))],
    );
    f.check(
        "r?t5=cb",
        list(vec![st("A"), 1.into(), 3.into()]),
        tbl![
            (2, row("C", "c".into(), 100.into(), 2)),
            (3, row("A", "a".into(), 10.into(), 3))
        ],
    );
    f.check(
        "r?t5=cb",
        list(vec![st("B"), 5.into(), 2.into()]),
        tbl![
            (1, row("B", "b".into(), 200.into(), 1)),
            (2, row("C", "c".into(), 100.into(), 2))
        ],
    );
    f.check(
        "r?t5=cb",
        list(vec![st("nobody"), 0.into(), 2.into()]),
        tbl![],
    );
    f.check(
        "r?t5=cb",
        list(vec![st("B"), (-1).into(), 1.into()]),
        tbl![(2, row("C", "c".into(), 100.into(), 2))],
    );
    // 2. set reply
    f.check(
        "s?t1=cb",
        tbl![("D", tbl![("i", 150), ("v", "d")])],
        tbl![("D", 2)],
    );
    f.check("s?t1=cb", tbl![("D", tbl![("i", 150)])], tbl![("D", 0)]);
    f.check("s?t1=cb", tbl![("D", tbl![("v", "d2")])], tbl![("D", -1)]);
    f.check("s?t1=cb", tbl![("D", tbl![("i", 1000)])], tbl![("D", 1)]);
    // 3. get
    f.check(
        "g?t1=cb",
        list(vec![st("C"), st("ZZ")]),
        tbl![
            ("C", tbl![("v", "c"), ("I", list(vec![di(3, 100.into())]))]),
            ("ZZ", tbl![])
        ],
    );
    // 4. ties: newest first in forEach, the group head's rank in get
    f.call("s?t4", tbl![("X", tbl![("i", 50), ("v", "x")])]);
    f.call("s?t4", tbl![("Y", tbl![("i", 50), ("v", "y")])]);
    f.check(
        "f?t4=cb",
        list(vec![1.into(), 2.into()]),
        tbl![
            (1, row("Y", "y".into(), 50.into(), 1)),
            (2, row("X", "x".into(), 50.into(), 2))
        ],
    );
    f.check(
        "g?t4=cb",
        list(vec![st("X"), st("Y")]),
        tbl![
            ("X", tbl![("v", "x"), ("I", list(vec![di(1, 50.into())]))]),
            ("Y", tbl![("v", "y"), ("I", list(vec![di(1, 50.into())]))])
        ],
    );
    // 7. tiers
    f.check(
        "s?t1/2=cb",
        tbl![("A", tbl![("I", list(vec![1.into(), 99.into()]))])],
        tbl![("A", 1)],
    );
    f.check(
        "f?t1/2=cb",
        list(vec![1.into(), 1.into()]),
        tbl![(1, row("A", "a".into(), 99.into(), 1))],
    );
    f.check(
        "g?t1/=cb",
        list(vec![st("A")]),
        tbl![(
            "A",
            tbl![
                ("v", "a"),
                (
                    "I",
                    tbl![(1, list(vec![1.into()])), (2, list(vec![99.into()]))]
                )
            ]
        )],
    );
    // 11. total (D6): IDs A B C D, tier 1 has 4 scores, tier 2 one.
    f.check("t?t1=cb", 0.into(), 4.into());
    f.check("t?t1/=cb", 0.into(), 4.into());
    f.check("t?t1/1=cb", 0.into(), 4.into());
    f.check("t?t1/2=cb", 0.into(), 1.into());
    // 8. delete one tier only
    f.check("d?t1=cb", st("A"), tbl![("A", true)]);
    f.check("g?t1=cb", st("A"), tbl![("A", tbl![("v", "a")])]);
    f.check(
        "g?t1/2=cb",
        st("A"),
        tbl![("A", tbl![("v", "a"), ("I", list(vec![di(1, 99.into())]))])],
    );
    // 9. delete all
    f.check("d?t1/=cb", st("A"), tbl![("A", true)]);
    f.check("g?t1=cb", st("A"), tbl![("A", tbl![])]);
    f.check("d?t1/=cb", st("A"), tbl![("A", false)]);
    f.check("t?t1/2=cb", 0.into(), 0.into());
    // 10. string scores rank below every integer, descending byte-wise
    f.call(
        "s?t10",
        tbl![
            ("S2", tbl![("i", "a")]),
            ("S1", tbl![("i", "b")]),
            ("N", tbl![("i", -1_000_000)]),
            ("P", tbl![("i", 3)])
        ],
    );
    f.check(
        "f?t10=cb",
        list(vec![1.into(), 10.into()]),
        tbl![
            (1, row("P", Value::Nil, 3.into(), 1)),
            (2, row("N", Value::Nil, (-1_000_000).into(), 2)),
            (3, row("S1", Value::Nil, "b".into(), 3)),
            (4, row("S2", Value::Nil, "a".into(), 4)),
        ],
    );
}

#[test]
fn acceptance_14_persistence_and_15_size_limit() {
    let f = Fixture::new();
    let mut batch = Vec::new();
    for n in 0..1000i64 {
        batch.push((
            Key::from(format!("ID{n:04}").as_str()),
            tbl![("i", (n * 7919) % 1000), ("v", tbl![("n", n)])],
        ));
    }
    f.call("s?p", Value::Table(Table(batch)));
    let before = f.call("f?p=cb", list(vec![1.into(), 1000.into()]));
    let f = f.reopen();
    let after = f.call("f?p=cb", list(vec![1.into(), 1000.into()]));
    assert_eq!(before, after);
    let Value::Table(t) = &after else {
        panic!("table")
    };
    assert_eq!(t.0.len(), 1000);

    // 15: a value whose encoding exceeds max_value_bytes is refused; nothing is stored.
    let big = Value::str(vec![b'x'; 5000]);
    f.check("s?p=cb", tbl![("BIG", tbl![("i", 1), ("v", big)])], tbl![]);
    f.check("g?p=cb", st("BIG"), tbl![("BIG", tbl![])]);
    let long_id = "x".repeat(65);
    f.check("s?p=cb", tbl![(long_id.as_str(), tbl![("i", 1)])], tbl![]);
    f.check("t?p=cb", 0.into(), 1000.into());
}

#[test]
fn acceptance_16_scale() {
    let f = Fixture::new();
    let file = f.index.file("scale").expect("open");
    let mut w = file.write();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for n in 0..200_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let update = stage_index::Update {
            value: None,
            scores: vec![(
                Tier::new(1).expect("tier"),
                vec![stage_index::Score::Int((x % 1_000_000) as i64)],
            )],
        };
        w.set(
            format!("U{n}").as_bytes(),
            &update,
            stage_index::TierSel::All,
        )
        .expect("set");
    }
    drop(w);
    let started = Instant::now();
    let v = f.call("f?scale=cb", list(vec![100_000.into(), 10.into()]));
    let took = started.elapsed();
    let Value::Table(t) = v else { panic!("table") };
    assert_eq!(t.0.len(), 10);
    assert_eq!(t.0[0].0, Key::Int(100_000));
    assert!(took.as_millis() < 10, "forEach took {took:?}");
}

#[test]
fn bad_input_is_reported_and_changes_nothing() {
    let f = Fixture::new();
    let codec = TestCodec;
    let cmds = Commands::new(&f.index, &codec);
    let text = |r: &stage_index::command::Reply| -> Vec<String> {
        r.problems.iter().map(ToString::to_string).collect()
    };
    let r = cmds.handle("x?rank=cb", &Value::Int(0));
    assert!(matches!(r.problems[..], [Problem::BadTarget { .. }]));
    assert_eq!(r.value, Value::Nil);
    assert!(!r.wrote);
    let r = cmds.handle("s?rank/9=cb", &tbl![("A", tbl![("i", 1)])]);
    assert!(text(&r)[0].contains("no such tier \"9\""), "{:?}", text(&r));
    let r = cmds.handle("s?rank=cb", &Value::Int(1));
    assert!(matches!(r.problems[..], [Problem::BadArgument { .. }]));
    assert_eq!(r.value, Value::Nil);
    // Per entry: a bad score and a non-table entry are left out; the good one is stored.
    let r = cmds.handle(
        "s?rank=cb",
        &tbl![("A", tbl![("i", 0.5)]), ("B", 3), ("C", tbl![("i", 1)])],
    );
    assert_eq!(norm(r.value.clone()), tbl![("C", 1)]);
    let t = text(&r);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        t[0].contains("ID \"A\"") && t[0].contains("the float 0.5"),
        "{t:?}"
    );
    assert!(
        t[1].contains("ID \"B\"") && t[1].contains("must be a table"),
        "{t:?}"
    );
    assert!(r.wrote);
    // The all-tiers path where one tier is needed, and malformed query arguments.
    let r = cmds.handle("f?rank/=cb", &list(vec![1.into(), 2.into()]));
    assert!(matches!(r.problems[..], [Problem::NeedsTier { .. }]));
    assert_eq!(r.value, tbl![]);
    let r = cmds.handle("s?rank/=cb", &tbl![("C", tbl![("i", 2)])]);
    assert!(text(&r)[0].contains("needs a single tier"));
    let r = cmds.handle("r?rank=cb", &list(vec![Value::Bool(true)]));
    assert!(matches!(r.problems[..], [Problem::BadArgument { .. }]));
    let r = cmds.handle("f?rank=cb", &st("top"));
    assert!(matches!(r.problems[..], [Problem::BadArgument { .. }]));
    let r = cmds.handle("g?rank=cb", &list(vec![st("C"), 7.into()]));
    assert_eq!(r.problems.len(), 1);
    let r = cmds.handle("cb", &Value::Int(3));
    assert!(matches!(r.problems[..], [Problem::NotABatch(_)]));
    let r = cmds.handle("cb", &tbl![("nonsense", 1), ("t?rank", 0)]);
    assert_eq!(r.value, tbl![("t?rank", 1)]);
    assert!(matches!(r.problems[..], [Problem::BadTarget { .. }]));
    // A file name that cannot be a path is a file problem.
    let r = cmds.handle("g?../up/1=cb", &st("A"));
    assert!(matches!(r.problems[..], [Problem::File { .. }]));
    // Nothing but C was stored.
    f.check("t?rank=cb", 0.into(), 1.into());
    f.check(
        "g?rank=cb",
        list(vec![st("A"), st("C")]),
        tbl![
            ("A", tbl![]),
            ("C", tbl![("I", list(vec![di(1, 1.into())]))])
        ],
    );
}

#[test]
fn one_message_updates_several_files_and_reads_its_own_writes() {
    let f = Fixture::new();
    f.check(
        "cb",
        tbl![
            ("#1.set:a", tbl![("X", tbl![("i", 5), ("v", "x")])]),
            ("#2.set:b", tbl![("Y", tbl![("i", 6)])]),
            ("#3.forEach:a", list(vec![1.into(), 5.into()])),
            ("#4.del:b", st("Y")),
            ("#5.total:b", 0),
        ],
        tbl![
            ("#1.set:a", tbl![("X", 1)]),
            ("#2.set:b", tbl![("Y", 1)]),
            ("#3.forEach:a", tbl![(1, row("X", "x".into(), 5.into(), 1))]),
            ("#4.del:b", tbl![("Y", true)]),
            ("#5.total:b", 1),
        ],
    );
    let f = f.reopen();
    f.check("t?a/1=cb", 0.into(), 1.into());
    f.check("g?b=cb", st("Y"), tbl![("Y", tbl![])]);
}
