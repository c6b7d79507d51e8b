//! Persistence: reopen, torn tails, corruption, snapshots, fsync policy, and a real crash.

use stage_index::{
    Config, Durability, Index, IndexError, IndexFile, Limits, Score, Tier, TierSel, Update,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn config(dir: &Path) -> Config {
    Config {
        dir: dir.to_path_buf(),
        ..Config::default()
    }
}

fn tier(n: i64) -> Tier {
    Tier::new(n).expect("tier")
}

fn upd(v: Option<&str>, scores: &[(i64, Score)]) -> Update {
    Update {
        value: v.map(|s| s.as_bytes().to_vec()),
        scores: scores
            .iter()
            .map(|(t, s)| (tier(*t), vec![s.clone()]))
            .collect(),
    }
}

type Dump = Vec<Vec<(u64, Vec<u8>, Option<Vec<u8>>, Score)>>;

/// Everything observable: every tier in rank order with values, plus the ID count.
fn dump(f: &IndexFile) -> (u64, Dump) {
    let r = f.read();
    let tiers = Tier::all()
        .map(|t| {
            let n = r.tier_len(t) as usize;
            r.for_each(t, 1, n.max(1))
                .into_iter()
                .map(|row| {
                    (
                        row.rank,
                        row.id.to_vec(),
                        row.value.map(<[u8]>::to_vec),
                        row.score.clone(),
                    )
                })
                .collect()
        })
        .collect();
    (r.id_count(), tiers)
}

/// Writes a mixed workload: sets over all tiers, string scores, ties, deletes.
fn workload(f: &IndexFile, from: u32, n: u32) {
    let mut w = f.write();
    for i in from..from + n {
        let id = format!("k{}", i % 300);
        let s = if i % 7 == 0 {
            Score::str(format!("s{}", i % 5))
        } else {
            Score::Int(i64::from(i % 50))
        };
        let u = upd(Some(&format!("v{i}")), &[(1 + i64::from(i % 4), s)]);
        w.set(id.as_bytes(), &u, TierSel::All).expect("set");
        if i % 11 == 0 {
            w.del(format!("k{}", (i * 3) % 300).as_bytes(), TierSel::All)
                .expect("del");
        }
        if i % 13 == 0 {
            w.del(id.as_bytes(), TierSel::One(tier(2)))
                .expect("del tier");
        }
    }
}

fn only_log(dir: &Path, name: &str) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}.")) && n.ends_with(".log"))
        })
        .collect();
    logs.sort();
    logs.pop().expect("a log")
}

#[test]
fn reopen_gives_identical_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let f = IndexFile::open(&config(dir.path()), "a/b").expect("open");
        workload(&f, 0, 3000);
        dump(&f)
    };
    let f = IndexFile::open(&config(dir.path()), "a/b").expect("reopen");
    assert_eq!(dump(&f), before);
    assert_eq!(f.load_report().dropped_bytes, 0);
    assert!(f.load_report().log_records > 3000);
}

#[test]
fn torn_tail_is_dropped_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let (before_last, full) = {
        let f = IndexFile::open(&cfg, "t").expect("open");
        workload(&f, 0, 200);
        let before_last = dump(&f);
        f.set(
            b"last",
            &upd(Some("x"), &[(1, Score::Int(999))]),
            TierSel::All,
        )
        .expect("set");
        (before_last, dump(&f))
    };
    let log = only_log(dir.path(), "t");
    let len = std::fs::metadata(&log).expect("meta").len();
    // Cut 3 bytes off the last record: a write torn by a crash.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .and_then(|f| f.set_len(len - 3))
        .expect("truncate");
    let f = IndexFile::open(&cfg, "t").expect("reopen after torn write");
    let dropped = f.load_report().dropped_bytes;
    assert!(dropped > 0 && dropped < 64, "dropped {dropped}");
    assert_eq!(dump(&f), before_last);
    assert_ne!(dump(&f), full);
    // The file goes on normally after the cut.
    f.set(b"after", &upd(None, &[(1, Score::Int(1))]), TierSel::All)
        .expect("set");
    let want = dump(&f);
    drop(f);
    let f = IndexFile::open(&cfg, "t").expect("reopen");
    assert_eq!(f.load_report().dropped_bytes, 0);
    assert_eq!(dump(&f), want);
    // Garbage appended after sound records (a torn write of random bytes) is dropped too.
    drop(f);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(only_log(dir.path(), "t"))
        .expect("open log");
    file.write_all(&[0xAB; 37]).expect("append junk");
    let f = IndexFile::open(&cfg, "t").expect("reopen");
    assert_eq!(f.load_report().dropped_bytes, 37);
    assert_eq!(dump(&f), want);
}

#[test]
fn corrupt_middle_byte_names_file_and_offset_and_others_still_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    {
        let index = Index::new(cfg.clone());
        workload(&index.file("bad").expect("open"), 0, 500);
        workload(&index.file("good").expect("open"), 0, 100);
    }
    let log = only_log(dir.path(), "bad");
    let mut bytes = std::fs::read(&log).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&log, &bytes).expect("write");
    let index = Index::new(cfg);
    let results = index.load_all();
    assert_eq!(results.len(), 2, "{results:?}");
    for (name, r) in results {
        match (name.as_str(), r) {
            ("good", Ok(rep)) => assert!(rep.ids > 0),
            ("bad", Err(IndexError::Corrupt { file, offset, .. })) => {
                assert_eq!(file, log);
                assert!(
                    offset <= mid as u64 && offset + 200 > mid as u64,
                    "{offset} vs {mid}"
                );
                let msg = IndexError::Corrupt {
                    file,
                    offset,
                    reason: String::new(),
                }
                .to_string();
                assert!(
                    msg.contains("bad.") && msg.contains(&offset.to_string()),
                    "{msg}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(index.file("bad").is_err(), "a corrupt file keeps refusing");
}

#[test]
fn updates_during_a_compaction_stay_out_of_its_snapshot_and_survive_a_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let f = IndexFile::open(&cfg, "c").expect("open");
    {
        // More IDs than a compaction copies per batch, so updates land between its batches.
        let mut w = f.write();
        for i in 0..20_000 {
            let u = upd(Some("v"), &[(1, Score::Int(i % 977))]);
            w.set(format!("id{i}").as_bytes(), &u, TierSel::All)
                .expect("set");
        }
        w.commit().expect("commit");
    }
    let stop = AtomicBool::new(false);
    let (started_tx, started) = mpsc::channel();
    let updates = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            // Scores changed, IDs deleted (their slots freed) and new IDs (reusing them).
            let (mut n, mut after) = (0u64, 0);
            while after < 200 && n < 2_000_000 {
                let i = n as i64;
                let u = upd(Some(&format!("w{n}")), &[(1, Score::Int(i % 1013))]);
                f.set(
                    format!("id{}", (i * 7) % 20_000).as_bytes(),
                    &u,
                    TierSel::All,
                )
                .expect("set");
                if n % 10 == 0 {
                    f.del(format!("id{}", (i * 13) % 20_000).as_bytes(), TierSel::All)
                        .expect("del");
                    f.set(format!("new{n}").as_bytes(), &u, TierSel::All)
                        .expect("set new");
                }
                n += 1;
                if n == 100 {
                    started_tx.send(()).expect("send");
                }
                if stop.load(Ordering::Acquire) {
                    after += 1;
                }
            }
            n
        });
        started
            .recv_timeout(Duration::from_secs(20))
            .expect("the writer runs");
        let rep = f.compact().expect("compact");
        assert!(rep.ids >= 20_000, "{} IDs", rep.ids);
        stop.store(true, Ordering::Release);
        writer.join().expect("writer")
    });
    let want = dump(&f);
    drop(f);
    let f = IndexFile::open(&cfg, "c").expect("reopen");
    let report = f.load_report();
    assert!(report.from_snapshot);
    assert!(
        report.log_records >= 200 && report.log_records < 20_000 + updates,
        "records replayed after the snapshot: {}",
        report.log_records
    );
    assert_eq!(dump(&f), want, "snapshot + newer log = the state");
}

#[test]
fn snapshot_plus_log_reload_equals_state_and_corrupt_snapshot_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    let want = {
        let f = IndexFile::open(&cfg, "s").expect("open");
        workload(&f, 0, 2000);
        let rep = f.compact().expect("compact");
        assert!(rep.ids > 0 && rep.snapshot_bytes > 0);
        workload(&f, 2000, 700);
        f.compact().expect("second compact");
        workload(&f, 2700, 300);
        dump(&f)
    };
    let logs = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count();
    assert_eq!(logs, 1, "compaction removes contained logs");
    let f = IndexFile::open(&cfg, "s").expect("reopen");
    assert!(f.load_report().from_snapshot);
    let replayed = f.load_report().log_records;
    assert!(
        (300..360).contains(&replayed),
        "only the last log is replayed: {replayed}"
    );
    assert_eq!(dump(&f), want);
    drop(f);
    let snap = dir.path().join("s.snap");
    let mut bytes = std::fs::read(&snap).expect("snap");
    let at = bytes.len() / 3;
    bytes[at] ^= 1;
    std::fs::write(&snap, &bytes).expect("write");
    match IndexFile::open(&cfg, "s") {
        Err(IndexError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, snap);
            assert!(offset <= at as u64);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    // A snapshot cut short (no end frame) refuses too.
    std::fs::write(&snap, &bytes[..at]).expect("write");
    assert!(matches!(
        IndexFile::open(&cfg, "s"),
        Err(IndexError::Corrupt { .. })
    ));
}

#[test]
fn missing_log_generation_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    {
        let f = IndexFile::open(&cfg, "m").expect("open");
        workload(&f, 0, 10);
    }
    let log = only_log(dir.path(), "m");
    std::fs::rename(&log, dir.path().join("m.0000000002.log")).expect("rename");
    assert!(matches!(
        IndexFile::open(&cfg, "m"),
        Err(IndexError::Corrupt { .. })
    ));
}

#[test]
fn fsync_policy_and_limits_from_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(Durability::from_fsync_ms(0), Durability::Always);
    let cfg = Config {
        durability: Durability::from_fsync_ms(100),
        ..config(dir.path())
    };
    let f = IndexFile::open(&cfg, "p").expect("open");
    let t0 = Instant::now();
    assert!(!f.sync_if_due(t0).expect("sync"), "nothing written yet");
    f.set(b"a", &upd(None, &[(1, Score::Int(1))]), TierSel::All)
        .expect("set");
    assert!(
        f.sync_if_due(t0).expect("sync"),
        "first sync is due at once"
    );
    f.set(b"b", &upd(None, &[(1, Score::Int(1))]), TierSel::All)
        .expect("set");
    assert!(!f.sync_if_due(t0 + Duration::from_millis(50)).expect("sync"));
    assert!(f
        .sync_if_due(t0 + Duration::from_millis(100))
        .expect("sync"));
    let always = Config {
        durability: Durability::Always,
        limits: Limits {
            max_id_bytes: 3,
            max_value_bytes: 4,
        },
        ..config(dir.path())
    };
    let f = IndexFile::open(&always, "q").expect("open");
    f.set(b"abc", &upd(Some("1234"), &[]), TierSel::All)
        .expect("set");
    assert!(
        !f.sync_if_due(t0).expect("sync"),
        "always: nothing left to sync"
    );
    assert!(f.set(b"abcd", &upd(None, &[]), TierSel::All).is_err());
    assert!(f
        .set(b"abc", &upd(Some("12345"), &[]), TierSel::All)
        .is_err());
    assert!(matches!(
        IndexFile::open(&always, "../x"),
        Err(IndexError::InvalidName { .. })
    ));
    assert!(IndexFile::open(&always, "/abs").is_err());
    assert!(IndexFile::open(&always, "a//b").is_err());
}

const CHILD_ENV: &str = "STAGE_INDEX_CRASH_DIR";

/// The writer half of the crash test: runs only when re-executed by `sigkill_*` below.
#[test]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let f = IndexFile::open(&config(Path::new(&dir)), "crash").expect("open");
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    for n in 0..2_000_000u64 {
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
        let id = format!("c{n}");
        let u = upd(Some(&format!("v{n}")), &[(1, Score::Int(n as i64 % 1000))]);
        f.set(id.as_bytes(), &u, TierSel::One(tier(1)))
            .expect("set");
        writeln!(out, "ACK {n}")
            .and_then(|_| out.flush())
            .expect("stdout");
    }
}

#[test]
fn sigkill_mid_stream_loses_no_acknowledged_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    // Data present before the writer starts must come through untouched.
    let base = {
        let f = IndexFile::open(&cfg, "crash").expect("open");
        for i in 0..50i64 {
            f.set(
                format!("base{i}").as_bytes(),
                &upd(Some("b"), &[(2, Score::Int(i))]),
                TierSel::All,
            )
            .expect("set");
        }
        dump(&f).1[1].clone()
    };
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args([
            "crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test crash_writer_child ... " without a newline first.
            let ack = line.find("ACK ").map(|at| &line[at + 4..]);
            if let Some(n) = ack.and_then(|n| n.trim().parse::<u64>().ok()) {
                if tx.send(n).is_err() {
                    break;
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut acked = Vec::new();
    while acked.len() < 5000 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(n) => acked.push(n),
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    // Lines already written before the kill are acknowledged sets too.
    while let Ok(n) = rx.recv_timeout(Duration::from_secs(5)) {
        acked.push(n);
    }
    reader.join().expect("reader thread");
    assert!(
        acked.len() >= 5000,
        "writer acknowledged only {}",
        acked.len()
    );
    let last = *acked.last().expect("acks");
    let in_order = acked.iter().enumerate().all(|(i, n)| i as u64 == *n);
    assert!(
        in_order,
        "acks not 0, 1, 2, ... (first {:?})",
        acked.first()
    );

    let f = IndexFile::open(&cfg, "crash").expect("reopen after SIGKILL");
    let r = f.read();
    for n in 0..=last {
        let hit = r
            .get(format!("c{n}").as_bytes(), tier(1))
            .expect("acknowledged set present");
        assert_eq!(hit.value, Some(format!("v{n}").as_bytes()));
        assert_eq!(hit.scores.len(), 1);
        assert_eq!(*hit.scores[0].0, Score::Int(n as i64 % 1000));
    }
    // At most the one set in flight at the kill may also be there; nothing else changed.
    let extra = r.id_count() - 50 - (last + 1);
    assert!(extra <= 1, "{extra} unexpected IDs");
    assert!(r.tier_len(tier(1)) == last + 1 + extra);
    drop(r);
    assert_eq!(dump(&f).1[1], base);
}

#[test]
fn a_writer_larger_than_one_group_write_reopens_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let before = {
        let f = IndexFile::open(&config(dir.path()), "big").expect("open");
        let mut w = f.write();
        for i in 0..40_000i64 {
            let u = upd(Some(&"v".repeat(40)), &[(1, Score::Int(i % 997))]);
            w.set(format!("id{i}").as_bytes(), &u, TierSel::All)
                .expect("set");
        }
        w.commit().expect("commit");
        assert!(f.log_bytes() > 2 * stage_index::GROUP_BYTES as u64);
        dump(&f)
    };
    let f = IndexFile::open(&config(dir.path()), "big").expect("reopen");
    assert_eq!(f.load_report().log_records, 40_000);
    assert_eq!(dump(&f), before);
}
