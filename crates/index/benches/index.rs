//! Criterion benchmarks of the engine at 1,000,000 IDs, plus a plain summary: operations per
//! second for set, get, rank, top-100 and score-range-100, the reload time of 1 M IDs
//! (snapshot + log), and memory per ID measured with a counting global allocator.

use criterion::{black_box, Criterion};
use stage_index::{Config, Durability, IndexFile, Limits, Ranking, Score, Tier, TierSel, Update};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const N: u64 = 1_000_000;

fn rng(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn tier1() -> Tier {
    Tier::new(1).unwrap_or_else(|e| panic!("{e}"))
}

fn update(score: i64) -> Update {
    Update {
        value: Some(b"\x16\x00\x00\x00\x02name\x00\x06\x00\x00\x00HELLO\x00\x00".to_vec()),
        scores: vec![(tier1(), vec![Score::Int(score)])],
    }
}

fn id(n: u64) -> Vec<u8> {
    format!("user{n:07}").into_bytes()
}

fn rate(label: &str, ops: u64, took: Duration) {
    println!(
        "{label:<34} {:>12.0} ops/s  ({ops} ops in {took:.2?})",
        ops as f64 / took.as_secs_f64()
    );
}

/// The plain figures: one timed pass per operation on a persisted file of 1 M IDs.
fn summary(dir: &std::path::Path) {
    let cfg = Config {
        dir: dir.to_path_buf(),
        durability: Durability::Periodic(Duration::from_millis(100)),
        ..Config::default()
    };
    let before = LIVE.load(Ordering::Relaxed);
    let file = IndexFile::open(&cfg, "bench").unwrap_or_else(|e| panic!("{e}"));
    let mut x = 0x2545_F491_4F6C_DD1D;
    let started = Instant::now();
    {
        let mut w = file.write();
        for n in 0..N {
            let s = (rng(&mut x) % 10_000_000) as i64;
            w.set(&id(n), &update(s), TierSel::One(tier1()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    rate("set (new IDs, logged)", N, started.elapsed());
    let mem = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "memory per ID (heap, counted)      {:>12.1} bytes  (ID 11 B, value 22 B, 1 int score)",
        mem as f64 / N as f64
    );
    let started = Instant::now();
    {
        let mut w = file.write();
        for _ in 0..N / 4 {
            let s = (rng(&mut x) % 10_000_000) as i64;
            w.set(&id(rng(&mut x) % N), &update(s), TierSel::One(tier1()))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    rate("set (update score, logged)", N / 4, started.elapsed());
    let r = file.read();
    let q = 200_000;
    let started = Instant::now();
    for _ in 0..q {
        black_box(r.get(&id(rng(&mut x) % N), tier1()));
    }
    rate("get (value + rank)", q, started.elapsed());
    let started = Instant::now();
    for _ in 0..q {
        black_box(r.for_each(tier1(), (rng(&mut x) % N) as i64 + 1, 1));
    }
    rate("entry at rank (forEach {r,1})", q, started.elapsed());
    let q2 = 20_000;
    let started = Instant::now();
    for _ in 0..q2 {
        black_box(r.for_each(tier1(), 1, 100));
    }
    rate("top-100 (forEach {1,100})", q2, started.elapsed());
    let started = Instant::now();
    for _ in 0..q2 {
        let s = Score::Int((rng(&mut x) % 10_000_000) as i64);
        black_box(r.range_by_score(tier1(), &s, 100));
    }
    rate("score range 100 (range {s,100})", q2, started.elapsed());
    drop(r);
    let started = Instant::now();
    let rep = file.compact().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "compaction of 1M IDs               {:>12.2?} total, updates held at most {:.2?} at once, snapshot {} MB",
        started.elapsed(),
        rep.writers_blocked,
        rep.snapshot_bytes >> 20
    );
    drop(file);
    let started = Instant::now();
    let file = IndexFile::open(&cfg, "bench").unwrap_or_else(|e| panic!("{e}"));
    println!(
        "reload 1M IDs (snapshot)           {:>12.2?}  ({} IDs)",
        started.elapsed(),
        file.load_report().ids
    );
    drop(file);
    let cfg2 = Config {
        dir: dir.join("logonly"),
        ..cfg.clone()
    };
    {
        let f = IndexFile::open(&cfg2, "bench").unwrap_or_else(|e| panic!("{e}"));
        let mut w = f.write();
        for n in 0..N {
            w.set(&id(n), &update(n as i64 % 1000), TierSel::All)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let started = Instant::now();
    let f = IndexFile::open(&cfg2, "bench").unwrap_or_else(|e| panic!("{e}"));
    println!(
        "reload 1M IDs (log replay only)    {:>12.2?}  ({} records)",
        started.elapsed(),
        f.load_report().log_records
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    println!("== stage-index engine figures (1,000,000 IDs, release) ==");
    summary(dir.path());

    // Criterion: in-memory ranking of 1 M IDs, small samples.
    let mut r = Ranking::new(Limits::default());
    let mut x = 0x9E37_79B9_7F4A_7C15;
    for n in 0..N {
        let s = (rng(&mut x) % 10_000_000) as i64;
        r.set(&id(n), &update(s), TierSel::All)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    c.bench_function("ranking_1M/set_update_score", |b| {
        b.iter(|| {
            let s = (rng(&mut x) % 10_000_000) as i64;
            r.set(&id(rng(&mut x) % N), &update(s), TierSel::One(tier1()))
        })
    });
    c.bench_function("ranking_1M/get", |b| {
        b.iter(|| black_box(r.get(&id(rng(&mut x) % N), tier1()).is_some()))
    });
    c.bench_function("ranking_1M/rank_select", |b| {
        b.iter(|| black_box(r.for_each(tier1(), (rng(&mut x) % N) as i64 + 1, 1).len()))
    });
    c.bench_function("ranking_1M/top100", |b| {
        b.iter(|| black_box(r.for_each(tier1(), 1, 100).len()))
    });
    c.bench_function("ranking_1M/score_range_100", |b| {
        b.iter(|| {
            let s = Score::Int((rng(&mut x) % 10_000_000) as i64);
            black_box(r.range_by_score(tier1(), &s, 100).len())
        })
    });
    c.final_summary();
}
