//! Index files on disk: [`IndexFile`] (one named store: state, log, snapshot) and [`Index`]
//! (the directory of files a service owns), with the configuration of decision 25.
//!
//! Durability: the records of the `set`/`del` calls made through one [`FileWriter`] are
//! collected and written to the log together — one `write` to the OS — by
//! [`FileWriter::commit`] (or when the writer is dropped, or every [`GROUP_BYTES`]), while the
//! writer still holds the file's lock: no reader sees a change before it is in the log, and a
//! caller that acknowledges after `commit` only acknowledges changes that survive a crash of
//! the process. Whether they also survive a crash of the machine depends on [`Durability`]:
//! `Always` fsyncs each group write; `Periodic` leaves that to [`IndexFile::sync_if_due`] /
//! [`IndexFile::sync`], which the service calls on a timer.
//!
//! A failed log write leaves the memory state ahead of the log: the file is then *stale* —
//! every further update fails — and [`Index::file`] reloads it from disk on its next use.
//!
//! Compaction ([`IndexFile::compact`]) runs on the caller's thread (the service uses a
//! background thread) and holds neither queries nor updates for long. Holding the file
//! exclusively, it switches the log to a new generation and freezes the state
//! ([`crate::frozen`]: before an update changes an entry the snapshot has not copied yet, the
//! entry as it was is kept aside). Then it copies the entries out in batches, holding the file
//! shared for each (a millisecond or so: only updates wait, and only that long), and writes
//! them to a temporary file, which it fsyncs and renames into place before deleting the log
//! generations the snapshot contains. Only the entries updated during a compaction are held
//! twice. (Serialising the whole state in one hold kept updates waiting 200–300 ms per million
//! IDs, and with them the service thread and every query queued behind an update.) A crash at
//! any point leaves either the old snapshot plus all logs, or the new snapshot plus (possibly)
//! obsolete logs that the next load deletes.

use crate::error::{IndexError, Result};
use crate::frame::{self, Record};
use crate::frozen::FrozenHead;
use crate::log::{self, LogWriter};
use crate::ranking::{Limits, Ranking, SetRank, Update};
use crate::score::TierSel;
use crate::snapshot::{self, SnapshotWriter};
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::HashMap;
use std::ops::Deref;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A [`FileWriter`] writes its collected records once they reach this many bytes, so that a
/// long series of updates under one writer does not pile up in memory.
pub const GROUP_BYTES: usize = 1 << 20;

/// Entries a compaction copies per hold of the state: about a millisecond of updates waiting.
const COPY_BATCH: u32 = 4096;

/// When the log is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After every record, before the change is acknowledged.
    Always,
    /// By [`IndexFile::sync_if_due`] once this long has passed since the previous fsync.
    Periodic(Duration),
}

impl Durability {
    /// The policy of the config key `fsync_ms`: `0` means [`Durability::Always`].
    pub fn from_fsync_ms(ms: u64) -> Durability {
        if ms == 0 {
            Durability::Always
        } else {
            Durability::Periodic(Duration::from_millis(ms))
        }
    }
}

/// The configuration of an index service (decision 25).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The directory holding the files (`"index/"`); empty (the default) is the current
    /// directory. A host that reads it from a configuration file resolves it against its own
    /// base directory before opening the files.
    pub dir: PathBuf,
    /// Size limits of IDs and values.
    pub limits: Limits,
    /// The fsync policy (`fsync_ms`, default 100).
    pub durability: Durability,
    /// Log size from which [`Index::compact_due`] compacts a file (or the size of its last
    /// snapshot, when that is larger: compaction then costs at most as much as the log grew).
    pub compact_log_bytes: u64,
}

impl Default for Config {
    /// The current directory, IDs of 64 and values of 4096 bytes at most, an fsync every
    /// 100 ms, compaction from 16 MiB of log (decision 25).
    fn default() -> Config {
        Config {
            dir: PathBuf::new(),
            limits: Limits::default(),
            durability: Durability::Periodic(Duration::from_millis(100)),
            compact_log_bytes: 16 << 20,
        }
    }
}

/// What loading an index file found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The file's name.
    pub name: String,
    /// IDs after loading.
    pub ids: u64,
    /// Whether a snapshot was read.
    pub from_snapshot: bool,
    /// Log records replayed on top of the snapshot.
    pub log_records: u64,
    /// Bytes of a torn log tail (an interrupted write) that were dropped.
    pub dropped_bytes: u64,
}

/// What a compaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactReport {
    /// IDs in the snapshot.
    pub ids: u64,
    /// Size of the snapshot file.
    pub snapshot_bytes: u64,
    /// The longest time updates were held back at once: the switch to a new log generation,
    /// or the copy of one batch of entries.
    pub writers_blocked: Duration,
}

/// Checks that an index file name is a safe relative path: non-empty components, no `.`/`..`,
/// no NUL, not absolute.
pub fn check_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(IndexError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.contains('\0') || name.contains('\\') {
        return bad("holds NUL or a backslash");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return bad("absolute, or an empty path component");
    }
    if Path::new(name)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
        || name.split('/').any(|c| c == "." || c == "..")
    {
        return bad("holds . or ..");
    }
    if name.ends_with(".tmp") || name.ends_with(".snap") || name.ends_with(".log") {
        return bad("ends with a reserved suffix");
    }
    Ok(())
}

/// One index file: its ranking behind a reader/writer lock, and its log.
#[derive(Debug)]
pub struct IndexFile {
    name: String,
    base: PathBuf,
    durability: Durability,
    state: RwLock<Ranking>,
    log: Mutex<LogWriter>,
    compacting: Mutex<()>,
    report: LoadReport,
    stale: AtomicBool,
    snapshot_bytes: AtomicU64,
}

fn logs_of(base: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = base.parent().unwrap_or(Path::new("."));
    let stem = base
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let mut logs = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(logs),
        Err(e) => return Err(IndexError::io(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| IndexError::io(dir, e))?;
        if let Some(gen) = entry
            .file_name()
            .to_str()
            .and_then(|n| log::log_generation(n, stem))
        {
            logs.push((gen, entry.path()));
        }
    }
    logs.sort();
    Ok(logs)
}

fn apply(ranking: &mut Ranking, rec: Record) {
    match rec {
        Record::Set { id, update } => {
            ranking.apply_set(&id, &update, TierSel::All);
        }
        Record::Del { id, sel } => {
            ranking.del(&id, sel);
        }
    }
}

impl IndexFile {
    /// Opens (creating if missing) the file `name` under `config.dir`: reads its snapshot,
    /// replays its logs, drops a torn tail of the newest log, and opens that log for writing.
    pub fn open(config: &Config, name: &str) -> Result<IndexFile> {
        check_name(name)?;
        let base = config.dir.join(name);
        if let Some(parent) = base.parent() {
            std::fs::create_dir_all(parent).map_err(|e| IndexError::io(parent, e))?;
        }
        let snap = snapshot::snap_path(&base);
        let mut report = LoadReport {
            name: name.to_string(),
            ..LoadReport::default()
        };
        let (mut ranking, snap_gen, snapshot_bytes) = if snap.exists() {
            let loaded = snapshot::load(&snap, config.limits)?;
            report.from_snapshot = true;
            let bytes = std::fs::metadata(&snap).map_or(0, |m| m.len());
            (loaded.ranking, loaded.log_gen, bytes)
        } else {
            (Ranking::new(config.limits), 0, 0)
        };
        let logs = logs_of(&base)?;
        let (old, live): (Vec<_>, Vec<_>) = logs.into_iter().partition(|(g, _)| *g < snap_gen);
        let mut tail = None;
        for (expected, (i, (gen, path))) in (snap_gen.max(1)..).zip(live.iter().enumerate()) {
            if *gen != expected {
                return Err(IndexError::Corrupt {
                    file: log::log_path(&base, expected),
                    offset: 0,
                    reason: format!("log generation {expected} is missing"),
                });
            }
            let last = i + 1 == live.len();
            let r = log::replay(path, *gen, last, |rec| apply(&mut ranking, rec))?;
            report.log_records += r.records;
            report.dropped_bytes += r.dropped;
            tail = Some((*gen, r.valid_len));
        }
        let writer = match tail {
            Some((gen, valid_len)) => LogWriter::reopen(&base, gen, valid_len)?,
            None => LogWriter::create(&base, snap_gen.max(1))?,
        };
        for (_, path) in old {
            std::fs::remove_file(&path).map_err(|e| IndexError::io(&path, e))?;
        }
        report.ids = ranking.id_count();
        Ok(IndexFile {
            name: name.to_string(),
            base,
            durability: config.durability,
            state: RwLock::new(ranking),
            log: Mutex::new(writer),
            compacting: Mutex::new(()),
            report,
            stale: AtomicBool::new(false),
            snapshot_bytes: AtomicU64::new(snapshot_bytes),
        })
    }

    /// Whether a failed log write left the memory state ahead of the log: the file refuses
    /// updates and compaction, and [`Index::file`] reloads it.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Acquire)
    }

    fn stale_error(&self) -> IndexError {
        IndexError::Stale {
            file: self.base.clone(),
        }
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What loading this file found (torn bytes dropped, records replayed, …).
    pub fn load_report(&self) -> &LoadReport {
        &self.report
    }

    /// Shared access for queries (`get`, `range`, `forEach`, `total`).
    pub fn read(&self) -> RwLockReadGuard<'_, Ranking> {
        self.state.read()
    }

    /// Exclusive access for a sequence of logged `set`/`del` calls (and queries between them),
    /// written to the log as one group by [`FileWriter::commit`].
    pub fn write(&self) -> FileWriter<'_> {
        FileWriter {
            state: self.state.write(),
            file: self,
            pending: Vec::new(),
        }
    }

    /// `set` of one ID, logged and committed; see [`FileWriter::set`].
    pub fn set(&self, id: &[u8], update: &Update, report: TierSel) -> Result<SetRank> {
        let mut w = self.write();
        let rank = w.set(id, update, report)?;
        w.commit()?;
        Ok(rank)
    }

    /// `del` of one ID, logged and committed; see [`FileWriter::del`].
    pub fn del(&self, id: &[u8], sel: TierSel) -> Result<bool> {
        let mut w = self.write();
        let done = w.del(id, sel)?;
        w.commit()?;
        Ok(done)
    }

    /// Writes a group of record frames to the log; a failure makes the file stale.
    fn log_frames(&self, frames: &[u8]) -> Result<()> {
        let written = self
            .log
            .lock()
            .append(frames, self.durability == Durability::Always);
        if written.is_err() {
            self.stale.store(true, Ordering::Release);
        }
        written
    }

    /// Fsyncs the log if it has unsynced records and the policy's interval has passed since
    /// the last fsync at `now`; returns whether it synced. Called by the service on a timer.
    pub fn sync_if_due(&self, now: Instant) -> Result<bool> {
        let (file, path) = {
            let mut log = self.log.lock();
            if !log.dirty {
                return Ok(false);
            }
            if let Durability::Periodic(every) = self.durability {
                if log
                    .last_sync
                    .is_some_and(|t| now.saturating_duration_since(t) < every)
                {
                    return Ok(false);
                }
            }
            log.dirty = false;
            log.last_sync = Some(now);
            log.sync_handle()?
        };
        file.sync_data().map_err(|e| IndexError::io(path, e))?;
        Ok(true)
    }

    /// Fsyncs the log now if it has unsynced records (the service's timer and a clean
    /// shutdown); returns whether it synced.
    pub fn sync(&self) -> Result<bool> {
        let (file, path) = {
            let mut log = self.log.lock();
            if !log.dirty {
                return Ok(false);
            }
            log.dirty = false;
            log.last_sync = Some(Instant::now());
            log.sync_handle()?
        };
        file.sync_data().map_err(|e| IndexError::io(path, e))?;
        Ok(true)
    }

    /// Whether the log has grown enough for [`IndexFile::compact`] to be worth it under
    /// `config` (see [`Config::compact_log_bytes`]).
    pub fn compaction_due(&self, config: &Config) -> bool {
        let threshold = config
            .compact_log_bytes
            .max(self.snapshot_bytes.load(Ordering::Relaxed));
        !self.is_stale() && self.log_bytes() >= threshold
    }

    /// Bytes in the current log generation.
    pub fn log_bytes(&self) -> u64 {
        self.log.lock().len()
    }

    /// Writes a snapshot of the state and drops the logs it contains; updates wait for it only
    /// while it switches logs and while it copies one batch of entries (see the module doc).
    pub fn compact(&self) -> Result<CompactReport> {
        let _one_at_a_time = self.compacting.lock();
        let (gen, head, switch) = {
            let mut state = self.state.write();
            let held = Instant::now();
            let mut log = self.log.lock();
            if self.is_stale() {
                return Err(self.stale_error());
            }
            log.rotate(&self.base)?;
            (log.generation(), state.freeze(), held.elapsed())
        };
        let copied = self.copy_frozen(gen, head);
        self.state.write().thaw();
        let (snapshot_bytes, longest_batch) = copied?;
        self.snapshot_bytes.store(snapshot_bytes, Ordering::Relaxed);
        for (g, path) in logs_of(&self.base)? {
            if g < gen {
                std::fs::remove_file(&path).map_err(|e| IndexError::io(&path, e))?;
            }
        }
        Ok(CompactReport {
            ids: head.ids,
            snapshot_bytes,
            writers_blocked: switch.max(longest_batch),
        })
    }

    /// Writes the frozen state as the snapshot that log generation `gen` continues; returns
    /// its size and the longest time a batch held the state.
    fn copy_frozen(&self, gen: u64, head: FrozenHead) -> Result<(u64, Duration)> {
        let path = snapshot::snap_path(&self.base);
        let mut snapshot = SnapshotWriter::create(&path, gen, head)?;
        let mut longest = Duration::ZERO;
        loop {
            let state = self.state.read();
            let held = Instant::now();
            let more = state.copy_frozen(COPY_BATCH, |e| snapshot.entry(e));
            drop(state);
            longest = longest.max(held.elapsed());
            snapshot.write_out()?;
            if !more {
                break;
            }
        }
        Ok((snapshot.finish()?, longest))
    }
}

/// Exclusive access to one file: logged updates plus every query through `Deref`.
///
/// Updates are applied at once and their log records collected; [`FileWriter::commit`] writes
/// them with one `write` (dropping the writer does the same, ignoring the outcome). Acknowledge
/// updates only after `commit` succeeded.
pub struct FileWriter<'a> {
    state: RwLockWriteGuard<'a, Ranking>,
    file: &'a IndexFile,
    pending: Vec<u8>,
}

impl FileWriter<'_> {
    /// `set`: checks the limits, applies the update, collects its log record and returns the
    /// rank in `report`. Nothing changes when the check fails or the file is stale.
    pub fn set(&mut self, id: &[u8], update: &Update, report: TierSel) -> Result<SetRank> {
        self.state.check_update(id, update)?;
        self.record(&frame::encode_set(id, update))?;
        Ok(self.state.apply_set(id, update, report))
    }

    /// `del`: removes the ID's scores in one tier, or the whole ID; logged when it changes
    /// anything. Returns whether it did.
    pub fn del(&mut self, id: &[u8], sel: TierSel) -> Result<bool> {
        let changes = match sel {
            TierSel::All => self.state.get_all(id).is_some(),
            TierSel::One(t) => self.state.get(id, t).is_some_and(|h| !h.scores.is_empty()),
        };
        if !changes {
            return Ok(false);
        }
        self.record(&frame::encode_del(id, sel))?;
        Ok(self.state.del(id, sel))
    }

    /// Collects one record, writing the group first when it has reached [`GROUP_BYTES`].
    fn record(&mut self, payload: &[u8]) -> Result<()> {
        if self.file.is_stale() {
            return Err(self.file.stale_error());
        }
        if self.pending.len() >= GROUP_BYTES {
            self.flush()?;
        }
        frame::put_frame(&mut self.pending, payload);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let written = self.file.log_frames(&self.pending);
        self.pending.clear();
        written
    }

    /// Writes the collected records to the log (one `write`; with [`Durability::Always`] also
    /// one fsync) and releases the lock. An error means some update of this writer may not be
    /// in the log: none of them may be acknowledged (the file is stale and will be reloaded).
    pub fn commit(mut self) -> Result<()> {
        self.flush()?;
        if self.file.is_stale() {
            return Err(self.file.stale_error());
        }
        Ok(())
    }
}

impl Drop for FileWriter<'_> {
    fn drop(&mut self) {
        // An uncommitted writer still logs what it applied; a failure marks the file stale.
        let _ = self.flush();
    }
}

impl Deref for FileWriter<'_> {
    type Target = Ranking;

    fn deref(&self) -> &Ranking {
        &self.state
    }
}

/// The index files of one service, opened on first use and kept open.
#[derive(Debug)]
pub struct Index {
    config: Config,
    files: Mutex<HashMap<String, Arc<IndexFile>>>,
}

impl Index {
    /// A service's set of files under `config.dir`; nothing is read yet.
    pub fn new(config: Config) -> Index {
        Index {
            config,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The open file `name`, opening or creating it on first use. A file that fails to load
    /// is not kept: every call reports its error again; a stale file is loaded again. Loading
    /// holds the table of open files, so one file is never loaded twice (other first opens
    /// wait; open files do not).
    pub fn file(&self, name: &str) -> Result<Arc<IndexFile>> {
        let mut files = self.files.lock();
        let stale = match files.get(name) {
            Some(f) if !f.is_stale() => return Ok(f.clone()),
            Some(_) => files.remove(name),
            None => None,
        };
        // A compaction of the stale file may still be storing its snapshot and deleting logs:
        // load after it, and keep another from starting on it meanwhile.
        let _compactions = stale.as_ref().map(|f| f.compacting.lock());
        let f = Arc::new(IndexFile::open(&self.config, name)?);
        files.insert(name.to_string(), f.clone());
        Ok(f)
    }

    /// Opens every file found under the directory (at start), each on its own: a file that
    /// refuses to load yields its error and the others still load.
    pub fn load_all(&self) -> Vec<(String, Result<LoadReport>)> {
        let mut names = Vec::new();
        find_names(&self.config.dir, "", &mut names);
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|n| {
                let r = self.file(&n).map(|f| f.load_report().clone());
                (n, r)
            })
            .collect()
    }

    fn open_files(&self) -> Vec<Arc<IndexFile>> {
        self.files.lock().values().cloned().collect()
    }

    /// Fsyncs every file whose interval has passed at `now`; returns the errors.
    pub fn sync_due(&self, now: Instant) -> Vec<IndexError> {
        self.open_files()
            .iter()
            .filter_map(|f| f.sync_if_due(now).err())
            .collect()
    }

    /// Fsyncs every open file with unsynced records (timer, clean shutdown); returns the errors.
    pub fn sync_all(&self) -> Vec<IndexError> {
        self.open_files()
            .iter()
            .filter_map(|f| f.sync().err())
            .collect()
    }

    /// Whether some open file is due for compaction ([`IndexFile::compaction_due`]).
    pub fn compaction_due(&self) -> bool {
        self.open_files()
            .iter()
            .any(|f| f.compaction_due(&self.config))
    }

    /// Compacts every file that is due ([`IndexFile::compaction_due`]).
    pub fn compact_due(&self) -> Vec<(String, Result<CompactReport>)> {
        self.open_files()
            .into_iter()
            .filter(|f| f.compaction_due(&self.config))
            .map(|f| (f.name().to_string(), f.compact()))
            .collect()
    }
}

/// Collects the names of index files (snapshots and logs) below `dir`.
fn find_names(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let Some(fname) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let path = entry.path();
        if path.is_dir() {
            find_names(&path, &format!("{prefix}{fname}/"), out);
        } else if let Some(stem) = fname.strip_suffix(".snap") {
            out.push(format!("{prefix}{stem}"));
        } else if let Some(stem) = fname
            .strip_suffix(".log")
            .and_then(|r| r.rsplit_once('.'))
            .filter(|(_, d)| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .map(|(s, _)| s)
        {
            out.push(format!("{prefix}{stem}"));
        }
    }
}
