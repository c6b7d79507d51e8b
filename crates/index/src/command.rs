//! The message forms of `spec/index.md` §3–§4 on [`Value`]s: parse a message id, run its
//! command(s) on an [`Index`], and build the reply exactly as the spec shows it.
//!
//! * Short form: `<cmd>?<file>[/<tier>][=<callback>]` with the command argument as value.
//! * Table form: `<callback>` (no `?`) with a table `{ ["[#n.]<cmd>?|:<file>[/<tier>]"] = arg }`;
//!   `#n.`-prefixed keys run first by ascending `n`, then the others in table order; the reply
//!   maps each key to its result (absent when the result is nil).
//!
//! The message id given here is the part after the service name (`index:`). Stored values
//! (`v`) are kept as bytes made by a [`ValueCodec`] (the service plugs in the BSON codec of
//! `stage-core`), so `max_value_bytes` limits the encoded size (decision 41).
//!
//! One message is one unit of work: every file it updates is locked for writing once, its
//! commands run in order, and each such file's log records are written with **one** `write`
//! ([`FileWriter::commit`]) before the reply is built. A file whose commit fails contributes
//! nil results (nothing acknowledged). Everything ignored or refused on the way — a key that is
//! no command, an argument of the wrong type, a single-tier command on the all-tiers path, an
//! entry over the limits, a file that does not load — is reported as a [`Problem`] with the
//! reply, for the service to log.
//!
//! Choices where the spec leaves room (its recommendations D3–D7): integral float scores are
//! integers and other floats fail the ID; `i = { s1, s2 }` is a list of scores; a missing `v`
//! is simply absent from replies; `t?file` and `t?file/` count IDs and `t?file/N` counts the
//! entries of tier N; tiers above 4, `forEach`/`range` on the all-tiers path and `i` on the
//! all-tiers path reply nil / an empty table / nil for the ID; numeric keys of a `set` table
//! become IDs `"#n"` (the BSON key mapping of `sandbox.md` §11).

use crate::error::IndexError;
use crate::ranking::{Ranking, Row, Update};
use crate::score::{Score, Tier, TierSel};
use crate::store::{FileWriter, Index, IndexFile};
use stage_core::{Key, Table, Value};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Turns stored values into bytes and back (the service uses BSON).
pub trait ValueCodec {
    /// The bytes stored for `value`, or why it cannot be stored.
    fn encode(&self, value: &Value) -> Result<Vec<u8>, String>;
    /// The value stored as `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<Value, String>;
}

/// The six commands; a command word is matched by its first letter (`garbage` is `get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `set` / `s`.
    Set,
    /// `get` / `g`.
    Get,
    /// `del` / `d`.
    Del,
    /// `range` / `r`.
    Range,
    /// `forEach` / `f`.
    ForEach,
    /// `total` / `t`.
    Total,
}

impl Command {
    /// The command a word names, by its first letter.
    pub fn parse(word: &str) -> Option<Command> {
        Some(match word.as_bytes().first()? {
            b's' => Command::Set,
            b'g' => Command::Get,
            b'd' => Command::Del,
            b'r' => Command::Range,
            b'f' => Command::ForEach,
            b't' => Command::Total,
            _ => return None,
        })
    }

    /// Whether the command changes its file (`set`, `del`).
    pub fn writes(self) -> bool {
        matches!(self, Command::Set | Command::Del)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Set => "set",
            Command::Get => "get",
            Command::Del => "del",
            Command::Range => "range",
            Command::ForEach => "forEach",
            Command::Total => "total",
        })
    }
}

/// The tier part of a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierPath {
    /// No `/`: tier 1 (but `total` counts IDs).
    Default,
    /// `file/` or `file/0`: all tiers.
    All,
    /// `file/N` with N in 1–4.
    One(Tier),
}

impl TierPath {
    fn single(self) -> Option<Tier> {
        match self {
            TierPath::Default => Tier::new(1).ok(),
            TierPath::One(t) => Some(t),
            TierPath::All => None,
        }
    }

    fn sel(self) -> TierSel {
        self.single().map_or(TierSel::All, TierSel::One)
    }
}

/// Why a command key (`<cmd>?<file>[/<tier>]`) does not parse.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TargetError {
    /// No `?` or `:` between the command and the file.
    #[error("no '?' or ':' between command and file")]
    NoSeparator,
    /// The command word starts with no command letter.
    #[error("unknown command {0:?} (set, get, del, range, forEach, total)")]
    UnknownCommand(String),
    /// The text after the last `/` is no tier.
    #[error("no such tier {0:?} (1-4, or 0 / nothing for all tiers)")]
    NoSuchTier(String),
    /// The file name is empty.
    #[error("no file name")]
    NoFile,
    /// A table-form key that is not a string.
    #[error("a command key must be a string")]
    NotText,
}

/// One command on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The command.
    pub command: Command,
    /// The index file name.
    pub file: String,
    /// The tier part.
    pub tier: TierPath,
}

impl Target {
    /// Parses `<cmd><sep><file>[/<tier>]` where `sep` is `?` or `:`.
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let cut = text.find(['?', ':']).ok_or(TargetError::NoSeparator)?;
        let word = &text[..cut];
        let command =
            Command::parse(word).ok_or_else(|| TargetError::UnknownCommand(word.to_string()))?;
        let path = &text[cut + 1..];
        let (file, tier) = match path.rsplit_once('/') {
            None => (path, TierPath::Default),
            Some((file, "")) | Some((file, "0")) => (file, TierPath::All),
            Some((file, n)) => {
                let tier = n
                    .parse::<i64>()
                    .ok()
                    .and_then(|n| Tier::new(n).ok())
                    .ok_or_else(|| TargetError::NoSuchTier(n.to_string()))?;
                (file, TierPath::One(tier))
            }
        };
        if file.is_empty() {
            return Err(TargetError::NoFile);
        }
        Ok(Target {
            command,
            file: file.to_string(),
            tier,
        })
    }
}

/// A parsed message id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The short form: the command (or why it does not parse) and the reply callback.
    Single {
        /// The command, file and tier.
        target: Result<Target, TargetError>,
        /// The reply callback, if any.
        callback: Option<String>,
    },
    /// The table form; the commands are the keys of the argument table.
    Batch {
        /// The reply callback, if any.
        callback: Option<String>,
    },
}

impl Request {
    /// Parses the message id after `index:`: with a `?` the short form, else the table form.
    pub fn parse(message_id: &str) -> Request {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        if !message_id.contains('?') {
            return Request::Batch {
                callback: non_empty(message_id),
            };
        }
        let (path, callback) = match message_id.split_once('=') {
            Some((p, cb)) => (p, non_empty(cb)),
            None => (message_id, None),
        };
        Request::Single {
            target: Target::parse(path),
            callback,
        }
    }
}

/// Why one entry of a `set`, `get` or `del` was left out of the reply.
#[derive(Debug, Error)]
pub enum EntryError {
    /// A `set` entry that is not a table.
    #[error("the entry must be a table, got {0}")]
    NotATable(String),
    /// A score that is not an integer, an integral float or a string.
    #[error("`{field}` holds an invalid score ({got}): integers, integral floats or strings")]
    BadScore {
        /// `i` or `I`.
        field: &'static str,
        /// What was given.
        got: String,
    },
    /// `I` that is not a table indexed by tier numbers.
    #[error("`I` must be a table indexed by tiers 1-4, got {0}")]
    BadTiers(String),
    /// `i` on the all-tiers path.
    #[error("`i` needs a single tier (the path names all tiers)")]
    NeedsTier,
    /// The value codec refused `v`, or a stored value does not decode.
    #[error("value: {0}")]
    Value(String),
    /// A `get`/`del` ID that is not a string.
    #[error("an ID must be a string, got {0}")]
    NotAnId(String),
    /// The engine refused the entry (limits) or could not log it.
    #[error(transparent)]
    Refused(#[from] IndexError),
}

/// Something in a message that was ignored or refused; the reply leaves it out (or is nil).
#[derive(Debug, Error)]
pub enum Problem {
    /// A command key (or the short-form message id) that does not parse.
    #[error("{text:?}: {error}")]
    BadTarget {
        /// The key as given.
        text: String,
        /// Why it does not parse.
        error: TargetError,
    },
    /// A table-form message whose value is not a table of commands.
    #[error("the table form needs a table of commands, got {0}")]
    NotABatch(String),
    /// A command argument of the wrong shape.
    #[error("{command} on {file:?}: the argument must be {expected}, got {got}")]
    BadArgument {
        /// The command.
        command: Command,
        /// Its file.
        file: String,
        /// What the command takes.
        expected: &'static str,
        /// What was given.
        got: String,
    },
    /// A command that needs a single tier on the all-tiers path.
    #[error("{command} on {file:?} needs a single tier (1-4), not all tiers")]
    NeedsTier {
        /// The command.
        command: Command,
        /// Its file.
        file: String,
    },
    /// One entry of a command refused.
    #[error("{command} on {file:?}: ID {id:?}: {error}")]
    Entry {
        /// The command.
        command: Command,
        /// Its file.
        file: String,
        /// The ID (lossy UTF-8).
        id: String,
        /// Why.
        error: EntryError,
    },
    /// A file that cannot be opened (e.g. corrupt) or whose log write failed.
    #[error("index file {file:?}: {error}")]
    File {
        /// The file's name.
        file: String,
        /// The error (naming the path and, for corruption, the byte offset).
        error: IndexError,
    },
}

/// What to send back: nothing without a callback, else one value to the callback.
#[derive(Debug)]
pub struct Reply {
    /// The callback as given in the message id (unqualified), or `None`: send no reply.
    pub callback: Option<String>,
    /// The single reply argument.
    pub value: Value,
    /// What was ignored or refused, to be logged.
    pub problems: Vec<Problem>,
    /// Whether some file was changed (its log written).
    pub wrote: bool,
}

/// Runs index messages on an [`Index`], keeping values through a [`ValueCodec`].
pub struct Commands<'a> {
    index: &'a Index,
    codec: &'a dyn ValueCodec,
}

/// One command of a message.
struct Job<'v> {
    target: Target,
    arg: &'v Value,
}

/// How a message reaches one of its files.
enum Access<'f> {
    /// The file did not open (its error is reported once).
    Closed,
    /// Only queries: a shared lock per command.
    Read(&'f IndexFile),
    /// Some update: one exclusive lock for the whole message.
    Write(FileWriter<'f>),
}

/// Collects the problems of one command, naming its command and file.
struct Report<'a> {
    target: &'a Target,
    problems: &'a mut Vec<Problem>,
}

impl Report<'_> {
    fn argument(&mut self, expected: &'static str, got: &Value) {
        self.problems.push(Problem::BadArgument {
            command: self.target.command,
            file: self.target.file.clone(),
            expected,
            got: describe(got),
        });
    }

    fn needs_tier(&mut self) {
        self.problems.push(Problem::NeedsTier {
            command: self.target.command,
            file: self.target.file.clone(),
        });
    }

    fn entry(&mut self, id: &[u8], error: EntryError) {
        self.problems.push(Problem::Entry {
            command: self.target.command,
            file: self.target.file.clone(),
            id: String::from_utf8_lossy(id).into_owned(),
            error,
        });
    }
}

/// A short description of a value for a log line: its type, or the number itself.
fn describe(v: &Value) -> String {
    match v {
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the float {f}"),
        Value::Table(t) if t.0.is_empty() => "an empty table".to_string(),
        v => v.type_name().to_string(),
    }
}

fn s(text: &str) -> Key {
    Key::str(text)
}

fn table(entries: Vec<(Key, Value)>) -> Value {
    Value::Table(Table(entries))
}

fn empty() -> Value {
    table(Vec::new())
}

fn score_value(score: &Score) -> Value {
    match score {
        Score::Int(i) => Value::Int(*i),
        Score::Str(b) => Value::str(b),
    }
}

/// A scalar score: integer, integral float or string.
fn score_of(v: &Value, field: &'static str) -> Result<Score, EntryError> {
    let bad = || EntryError::BadScore {
        field,
        got: describe(v),
    };
    match v {
        Value::Int(i) => Ok(Score::Int(*i)),
        Value::Float(f) => Score::from_f64(*f).map_err(|_| bad()),
        Value::Str(b) => Ok(Score::Str(b.as_slice().into())),
        _ => Err(bad()),
    }
}

/// A score list: one scalar, or a sequence of scalars.
fn scores_of(v: &Value, field: &'static str) -> Result<Vec<Score>, EntryError> {
    match v {
        Value::Table(t) => t.0.iter().map(|(_, v)| score_of(v, field)).collect(),
        v => score_of(v, field).map(|s| vec![s]),
    }
}

fn id_of_key(key: &Key) -> Vec<u8> {
    match key {
        Key::Str(b) => b.to_vec(),
        Key::Int(n) => format!("#{n}").into_bytes(),
    }
}

const IDS: &str = "an ID string or a list of ID strings";

/// The IDs of a `get`/`del` argument: one string or a list of strings.
fn ids_of<'v>(arg: &'v Value, report: &mut Report<'_>) -> Vec<&'v [u8]> {
    match arg {
        Value::Str(b) => vec![b.as_slice()],
        Value::Table(t) => {
            t.0.iter()
                .filter_map(|(k, v)| {
                    let id = v.as_bytes();
                    if id.is_none() {
                        report.entry(&id_of_key(k), EntryError::NotAnId(describe(v)));
                    }
                    id
                })
                .collect()
        }
        other => {
            report.argument(IDS, other);
            Vec::new()
        }
    }
}

/// Element `n` (1-based) of a sequence argument.
fn nth(arg: &Table, n: i64) -> Option<&Value> {
    arg.get(&Key::Int(n))
}

fn count_of(v: Option<&Value>) -> usize {
    v.and_then(Value::as_int)
        .map_or(1, |c| usize::try_from(c).unwrap_or(0).max(1))
}

/// The commands of a table-form argument in execution order: `#n.` keys by ascending `n`,
/// then the others in table order; each with its original key.
fn batch_jobs<'v>(arg: &'v Table, problems: &mut Vec<Problem>) -> Vec<(&'v Key, Job<'v>)> {
    let mut numbered = Vec::new();
    let mut plain = Vec::new();
    for (key, value) in &arg.0 {
        let parsed = match key {
            Key::Str(raw) => {
                let text = String::from_utf8_lossy(raw);
                let (seq, rest) = match text.split_once('.') {
                    Some((prefix, rest)) => (
                        prefix.strip_prefix('#').and_then(|n| n.parse::<i64>().ok()),
                        rest,
                    ),
                    None => (None, text.as_ref()),
                };
                Target::parse(rest)
                    .map(|target| (seq, target))
                    .map_err(|error| (text.to_string(), error))
            }
            Key::Int(n) => Err((n.to_string(), TargetError::NotText)),
        };
        match parsed {
            Ok((Some(n), target)) => numbered.push((n, key, Job { target, arg: value })),
            Ok((None, target)) => plain.push((key, Job { target, arg: value })),
            Err((text, error)) => problems.push(Problem::BadTarget { text, error }),
        }
    }
    numbered.sort_by_key(|(n, ..)| *n);
    numbered
        .into_iter()
        .map(|(_, k, job)| (k, job))
        .chain(plain)
        .collect()
}

impl<'a> Commands<'a> {
    /// A command runner on `index`, storing values with `codec`.
    pub fn new(index: &'a Index, codec: &'a dyn ValueCodec) -> Commands<'a> {
        Commands { index, codec }
    }

    /// Runs one message (`message_id` after `index:`, `arg` its value) and returns the reply.
    pub fn handle(&self, message_id: &str, arg: &Value) -> Reply {
        let mut problems = Vec::new();
        let (callback, value, wrote) = match Request::parse(message_id) {
            Request::Single { target, callback } => match target {
                Ok(target) => {
                    let (mut results, wrote) = self.execute(&[Job { target, arg }], &mut problems);
                    (callback, results.pop().unwrap_or(Value::Nil), wrote)
                }
                Err(error) => {
                    let text = message_id.split('=').next().unwrap_or_default();
                    problems.push(Problem::BadTarget {
                        text: text.to_string(),
                        error,
                    });
                    (callback, Value::Nil, false)
                }
            },
            Request::Batch { callback } => {
                let (value, wrote) = self.batch(arg, &mut problems);
                (callback, value, wrote)
            }
        };
        Reply {
            callback,
            value,
            problems,
            wrote,
        }
    }

    /// Runs the commands of a table-form argument; returns the reply table.
    fn batch(&self, arg: &Value, problems: &mut Vec<Problem>) -> (Value, bool) {
        let Value::Table(t) = arg else {
            problems.push(Problem::NotABatch(describe(arg)));
            return (empty(), false);
        };
        let (keys, jobs): (Vec<&Key>, Vec<Job<'_>>) = batch_jobs(t, problems).into_iter().unzip();
        let (results, wrote) = self.execute(&jobs, problems);
        let out = keys
            .into_iter()
            .zip(results)
            .filter(|(_, v)| *v != Value::Nil)
            .map(|(k, v)| (k.clone(), v))
            .collect();
        (table(out), wrote)
    }

    /// Runs `jobs` in order, each file opened once and, if updated, locked for writing once
    /// and committed with one log write; returns the results in job order (nil for commands
    /// on a file that did not open or whose commit failed) and whether a file was changed.
    fn execute(&self, jobs: &[Job<'_>], problems: &mut Vec<Problem>) -> (Vec<Value>, bool) {
        let mut names: Vec<(&str, bool)> = Vec::new();
        for job in jobs {
            let writes = job.target.command.writes();
            match names.iter_mut().find(|(n, _)| *n == job.target.file) {
                Some((_, w)) => *w |= writes,
                None => names.push((&job.target.file, writes)),
            }
        }
        // A fixed lock order (by name) for the files a message locks together.
        names.sort_unstable();
        let files: Vec<Option<Arc<IndexFile>>> = names
            .iter()
            .map(|(name, _)| match self.index.file(name) {
                Ok(f) => Some(f),
                Err(error) => {
                    problems.push(Problem::File {
                        file: name.to_string(),
                        error,
                    });
                    None
                }
            })
            .collect();
        let mut access: Vec<Access<'_>> = files
            .iter()
            .zip(&names)
            .map(|(f, (_, writes))| match f {
                None => Access::Closed,
                Some(f) if *writes => Access::Write(f.write()),
                Some(f) => Access::Read(f),
            })
            .collect();
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let at = names
                .binary_search_by(|(n, _)| n.cmp(&job.target.file.as_str()))
                .ok();
            let mut report = Report {
                target: &job.target,
                problems: &mut *problems,
            };
            let value = match at.and_then(|at| access.get_mut(at)) {
                None | Some(Access::Closed) => Value::Nil,
                Some(Access::Read(f)) => self.query(&f.read(), job, &mut report),
                Some(Access::Write(w)) => match job.target.command {
                    Command::Set => self.set(w, job, &mut report),
                    Command::Del => self.del(w, job, &mut report),
                    _ => self.query(w, job, &mut report),
                },
            };
            results.push((at, value));
        }
        let mut wrote = false;
        for (at, a) in access.into_iter().enumerate() {
            let Access::Write(w) = a else { continue };
            wrote = true;
            if let Err(error) = w.commit() {
                problems.push(Problem::File {
                    file: names[at].0.to_string(),
                    error,
                });
                for (_, v) in results.iter_mut().filter(|(i, _)| *i == Some(at)) {
                    *v = Value::Nil;
                }
            }
        }
        (results.into_iter().map(|(_, v)| v).collect(), wrote)
    }

    /// A command that only reads.
    fn query(&self, r: &Ranking, job: &Job<'_>, report: &mut Report<'_>) -> Value {
        let tier = job.target.tier;
        match job.target.command {
            Command::Get => self.get(r, tier, job.arg, report),
            Command::ForEach => self.for_each(r, tier, job.arg, report),
            Command::Range => self.range(r, tier, job.arg, report),
            Command::Total => {
                let n = match tier {
                    TierPath::Default | TierPath::All => r.id_count(),
                    TierPath::One(t) => r.tier_len(t),
                };
                Value::Int(n as i64)
            }
            Command::Set | Command::Del => Value::Nil,
        }
    }

    fn update_of(&self, entry: &Value, tier: TierPath) -> Result<Update, EntryError> {
        let Value::Table(e) = entry else {
            return Err(EntryError::NotATable(describe(entry)));
        };
        let mut update = Update::default();
        if let Some(v) = e.get_str("v") {
            update.value = Some(self.codec.encode(v).map_err(EntryError::Value)?);
        }
        if let Some(all) = e.get_str("I") {
            let Value::Table(tiers) = all else {
                return Err(EntryError::BadTiers(describe(all)));
            };
            for (k, v) in &tiers.0 {
                let tier = match k {
                    Key::Int(n) => Tier::new(*n).ok(),
                    Key::Str(_) => None,
                }
                .ok_or_else(|| EntryError::BadTiers(format!("the key {k:?}")))?;
                update.scores.push((tier, scores_of(v, "I")?));
            }
        }
        if let Some(i) = e.get_str("i") {
            let tier = tier.single().ok_or(EntryError::NeedsTier)?;
            update.scores.push((tier, scores_of(i, "i")?));
        }
        Ok(update)
    }

    fn set(&self, w: &mut FileWriter<'_>, job: &Job<'_>, report: &mut Report<'_>) -> Value {
        let Value::Table(t) = job.arg else {
            report.argument("a table { [ID] = { v = …, i = …, I = … } }", job.arg);
            return Value::Nil;
        };
        let tier = job.target.tier;
        let mut out = Vec::with_capacity(t.0.len());
        for (key, entry) in &t.0 {
            let id = id_of_key(key);
            let done = self
                .update_of(entry, tier)
                .and_then(|update| Ok(w.set(&id, &update, tier.sel())?));
            match done {
                Ok(rank) => out.push((key.clone(), Value::Int(rank.as_i64()))),
                Err(error) => report.entry(&id, error),
            }
        }
        table(out)
    }

    fn del(&self, w: &mut FileWriter<'_>, job: &Job<'_>, report: &mut Report<'_>) -> Value {
        let mut out = Vec::new();
        for id in ids_of(job.arg, report) {
            match w.del(id, job.target.tier.sel()) {
                Ok(done) => out.push((Key::str(id), Value::Bool(done))),
                Err(error) => report.entry(id, error.into()),
            }
        }
        table(out)
    }

    fn value_field(
        &self,
        id: &[u8],
        value: Option<&[u8]>,
        out: &mut Vec<(Key, Value)>,
        report: &mut Report<'_>,
    ) {
        match value.map(|b| self.codec.decode(b)) {
            Some(Ok(v)) => out.push((s("v"), v)),
            Some(Err(e)) => report.entry(id, EntryError::Value(e)),
            None => {}
        }
    }

    fn get(&self, r: &Ranking, tier: TierPath, arg: &Value, report: &mut Report<'_>) -> Value {
        let ids = ids_of(arg, report);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut fields = Vec::with_capacity(2);
            match tier.single() {
                Some(t) => {
                    if let Some(hit) = r.get(id, t) {
                        self.value_field(id, hit.value, &mut fields, report);
                        if !hit.scores.is_empty() {
                            let list = hit
                                .scores
                                .iter()
                                .zip(1..)
                                .map(|((score, rank), n)| {
                                    let d = (s("d"), Value::Int(*rank as i64));
                                    (Key::Int(n), table(vec![d, (s("i"), score_value(score))]))
                                })
                                .collect();
                            fields.push((s("I"), table(list)));
                        }
                    }
                }
                None => {
                    if let Some(hit) = r.get_all(id) {
                        self.value_field(id, hit.value, &mut fields, report);
                        let tiers: Vec<(Key, Value)> = Tier::all()
                            .zip(hit.tiers.iter())
                            .filter(|(_, list)| !list.is_empty())
                            .map(|(t, list)| {
                                let seq = list
                                    .iter()
                                    .zip(1..)
                                    .map(|(sc, n)| (Key::Int(n), score_value(sc)))
                                    .collect();
                                (Key::Int(i64::from(t.number())), table(seq))
                            })
                            .collect();
                        if !tiers.is_empty() {
                            fields.push((s("I"), table(tiers)));
                        }
                    }
                }
            }
            out.push((Key::str(id), table(fields)));
        }
        table(out)
    }

    fn rows(&self, rows: Vec<Row<'_>>, report: &mut Report<'_>) -> Value {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut f = Vec::with_capacity(if row.value.is_some() { 4 } else { 3 });
            f.push((s("k"), Value::str(row.id)));
            self.value_field(row.id, row.value, &mut f, report);
            f.push((s("i"), score_value(row.score)));
            f.push((s("d"), Value::Int(row.rank as i64)));
            out.push((Key::Int(row.rank as i64), table(f)));
        }
        table(out)
    }

    fn for_each(&self, r: &Ranking, tier: TierPath, arg: &Value, report: &mut Report<'_>) -> Value {
        let Some(t) = tier.single() else {
            report.needs_tier();
            return empty();
        };
        let start = match arg {
            Value::Table(a) => nth(a, 1).and_then(Value::as_int).map(|s| (s, a)),
            _ => None,
        };
        let Some((start, a)) = start else {
            report.argument("{ start, count }", arg);
            return empty();
        };
        self.rows(r.for_each(t, start, count_of(nth(a, 2))), report)
    }

    fn range(&self, r: &Ranking, tier: TierPath, arg: &Value, report: &mut Report<'_>) -> Value {
        const RANGE: &str = "{ score, count } or { ID, delta, count }";
        let Some(t) = tier.single() else {
            report.needs_tier();
            return empty();
        };
        let Value::Table(a) = arg else {
            report.argument(RANGE, arg);
            return empty();
        };
        match nth(a, 1) {
            Some(Value::Str(id)) => {
                let delta = nth(a, 2).and_then(Value::as_int).unwrap_or(0);
                self.rows(r.range_around(t, id, delta, count_of(nth(a, 3))), report)
            }
            first => match first.and_then(Value::as_int) {
                Some(max) => self.rows(
                    r.range_by_score(t, &Score::Int(max), count_of(nth(a, 2))),
                    report,
                ),
                None => {
                    report.argument(RANGE, arg);
                    empty()
                }
            },
        }
    }
}
