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
//! Choices where the spec leaves room (its recommendations D3–D7): integral float scores are
//! integers and other floats fail the ID; `i = { s1, s2 }` is a list of scores; a missing `v`
//! is simply absent from replies; `t?file` and `t?file/` count IDs and `t?file/N` counts the
//! entries of tier N; tiers above 4, `forEach`/`range` on the all-tiers path and `i` on the
//! all-tiers path reply nil / an empty table / nil for the ID; numeric keys of a `set` table
//! become IDs `"#n"` (the BSON key mapping of `sandbox.md` §11).

use crate::ranking::{Ranking, Row, Update};
use crate::score::{Score, Tier, TierSel};
use crate::store::{Index, IndexFile};
use stage_core::{Key, Table, Value};

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
    /// Parses `<cmd><sep><file>[/<tier>]` where `sep` is `?` or `:`; `None` if it is not a
    /// command or the tier is not 0–4.
    pub fn parse(text: &str) -> Option<Target> {
        let cut = text.find(['?', ':'])?;
        let command = Command::parse(&text[..cut])?;
        let path = &text[cut + 1..];
        let (file, tier) = match path.rsplit_once('/') {
            None => (path, TierPath::Default),
            Some((file, "")) | Some((file, "0")) => (file, TierPath::All),
            Some((file, n)) => {
                let n: i64 = n.parse().ok()?;
                (file, TierPath::One(Tier::new(n).ok()?))
            }
        };
        if file.is_empty() {
            return None;
        }
        Some(Target {
            command,
            file: file.to_string(),
            tier,
        })
    }
}

/// A parsed message id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The short form; `target` is `None` when the command or tier does not parse.
    Single {
        /// The command, file and tier.
        target: Option<Target>,
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

/// A callback id qualified with the sender's stage name when it has no `:`.
pub fn qualify_callback(callback: &str, sender_stage: &str) -> String {
    if callback.contains(':') {
        callback.to_string()
    } else {
        format!("{sender_stage}:{callback}")
    }
}

/// What to send back: nothing without a callback, else one value to the callback.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The callback as given in the message id (unqualified), or `None`: send no reply.
    pub callback: Option<String>,
    /// The single reply argument.
    pub value: Value,
}

/// Runs index messages on an [`Index`], keeping values through a [`ValueCodec`].
pub struct Commands<'a> {
    index: &'a Index,
    codec: &'a dyn ValueCodec,
}

fn s(text: &str) -> Key {
    Key::Str(text.as_bytes().to_vec())
}

fn table(entries: Vec<(Key, Value)>) -> Value {
    Value::Table(Table(entries))
}

fn score_value(score: &Score) -> Value {
    match score {
        Score::Int(i) => Value::Int(*i),
        Score::Str(b) => Value::Str(b.to_vec()),
    }
}

/// A scalar score: integer, integral float or string.
fn score_of(v: &Value) -> Option<Score> {
    match v {
        Value::Int(i) => Some(Score::Int(*i)),
        Value::Float(f) => Score::from_f64(*f).ok(),
        Value::Str(b) => Some(Score::Str(b.as_slice().into())),
        _ => None,
    }
}

/// A score list: one scalar, or a sequence of scalars.
fn scores_of(v: &Value) -> Option<Vec<Score>> {
    match v {
        Value::Table(t) => t.0.iter().map(|(_, v)| score_of(v)).collect(),
        v => score_of(v).map(|s| vec![s]),
    }
}

fn id_of_key(key: &Key) -> Vec<u8> {
    match key {
        Key::Str(b) => b.clone(),
        Key::Int(n) => format!("#{n}").into_bytes(),
    }
}

/// The IDs of a `get`/`del` argument: one string or a list of strings.
fn ids_of(arg: &Value) -> Vec<&[u8]> {
    match arg {
        Value::Str(b) => vec![b.as_slice()],
        Value::Table(t) => t.0.iter().filter_map(|(_, v)| v.as_bytes()).collect(),
        _ => Vec::new(),
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

impl<'a> Commands<'a> {
    /// A command runner on `index`, storing values with `codec`.
    pub fn new(index: &'a Index, codec: &'a dyn ValueCodec) -> Commands<'a> {
        Commands { index, codec }
    }

    /// Runs one message (`message_id` after `index:`, `arg` its value) and returns the reply.
    pub fn handle(&self, message_id: &str, arg: &Value) -> Reply {
        match Request::parse(message_id) {
            Request::Single { target, callback } => Reply {
                callback,
                value: target.map_or(Value::Nil, |t| self.run(&t, arg)),
            },
            Request::Batch { callback } => Reply {
                callback,
                value: self.batch(arg),
            },
        }
    }

    /// Runs the commands of a table-form argument in order; returns the reply table.
    pub fn batch(&self, arg: &Value) -> Value {
        let Value::Table(t) = arg else {
            return table(Vec::new());
        };
        let mut numbered = Vec::new();
        let mut plain = Vec::new();
        for (key, value) in &t.0 {
            let Key::Str(raw) = key else { continue };
            let Ok(text) = std::str::from_utf8(raw) else {
                continue;
            };
            let (seq, rest) = match text.split_once('.') {
                Some((prefix, rest)) => (
                    prefix.strip_prefix('#').and_then(|n| n.parse::<i64>().ok()),
                    rest,
                ),
                None => (None, text),
            };
            let Some(target) = Target::parse(rest) else {
                continue;
            };
            match seq {
                Some(n) => numbered.push((n, key, target, value)),
                None => plain.push((key, target, value)),
            }
        }
        numbered.sort_by_key(|(n, ..)| *n);
        let order = numbered
            .into_iter()
            .map(|(_, k, t, v)| (k, t, v))
            .chain(plain);
        let mut out = Vec::new();
        for (key, target, value) in order {
            let result = self.run(&target, value);
            if result != Value::Nil {
                out.push((key.clone(), result));
            }
        }
        table(out)
    }

    /// Runs one command; `Value::Nil` when its file cannot be opened or the request is invalid.
    pub fn run(&self, target: &Target, arg: &Value) -> Value {
        let Ok(file) = self.index.file(&target.file) else {
            return Value::Nil;
        };
        match target.command {
            Command::Set => self.set(&file, target.tier, arg),
            Command::Del => self.del(&file, target.tier, arg),
            Command::Get => self.get(&file.read(), target.tier, arg),
            Command::ForEach => self.for_each(&file.read(), target.tier, arg),
            Command::Range => self.range(&file.read(), target.tier, arg),
            Command::Total => {
                let r = file.read();
                let n = match target.tier {
                    TierPath::Default | TierPath::All => r.id_count(),
                    TierPath::One(t) => r.tier_len(t),
                };
                Value::Int(n as i64)
            }
        }
    }

    fn update_of(&self, entry: &Value, tier: TierPath) -> Option<Update> {
        let Value::Table(e) = entry else { return None };
        let mut update = Update::default();
        if let Some(v) = e.get_str("v") {
            update.value = Some(self.codec.encode(v).ok()?);
        }
        if let Some(all) = e.get_str("I") {
            let Value::Table(all) = all else { return None };
            for (k, v) in &all.0 {
                let Key::Int(n) = k else { return None };
                update.scores.push((Tier::new(*n).ok()?, scores_of(v)?));
            }
        }
        if let Some(i) = e.get_str("i") {
            update.scores.push((tier.single()?, scores_of(i)?));
        }
        Some(update)
    }

    fn set(&self, file: &IndexFile, tier: TierPath, arg: &Value) -> Value {
        let Value::Table(t) = arg else {
            return Value::Nil;
        };
        let mut w = file.write();
        let mut out = Vec::new();
        for (key, entry) in &t.0 {
            let Some(update) = self.update_of(entry, tier) else {
                continue;
            };
            if let Ok(rank) = w.set(&id_of_key(key), &update, tier.sel()) {
                out.push((key.clone(), Value::Int(rank.as_i64())));
            }
        }
        table(out)
    }

    fn del(&self, file: &IndexFile, tier: TierPath, arg: &Value) -> Value {
        let mut w = file.write();
        let mut out = Vec::new();
        for id in ids_of(arg) {
            if let Ok(done) = w.del(id, tier.sel()) {
                out.push((Key::Str(id.to_vec()), Value::Bool(done)));
            }
        }
        table(out)
    }

    fn value_field(&self, value: Option<&[u8]>, out: &mut Vec<(Key, Value)>) {
        if let Some(v) = value.and_then(|b| self.codec.decode(b).ok()) {
            out.push((s("v"), v));
        }
    }

    fn get(&self, r: &Ranking, tier: TierPath, arg: &Value) -> Value {
        let mut out = Vec::new();
        for id in ids_of(arg) {
            let mut fields = Vec::new();
            match tier.single() {
                Some(t) => {
                    if let Some(hit) = r.get(id, t) {
                        self.value_field(hit.value, &mut fields);
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
                        self.value_field(hit.value, &mut fields);
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
            out.push((Key::Str(id.to_vec()), table(fields)));
        }
        table(out)
    }

    fn rows(&self, rows: Vec<Row<'_>>) -> Value {
        table(
            rows.into_iter()
                .map(|row| {
                    let mut f = vec![(s("k"), Value::Str(row.id.to_vec()))];
                    self.value_field(row.value, &mut f);
                    f.push((s("i"), score_value(row.score)));
                    f.push((s("d"), Value::Int(row.rank as i64)));
                    (Key::Int(row.rank as i64), table(f))
                })
                .collect(),
        )
    }

    fn for_each(&self, r: &Ranking, tier: TierPath, arg: &Value) -> Value {
        let (Some(t), Value::Table(a)) = (tier.single(), arg) else {
            return table(Vec::new());
        };
        let Some(start) = nth(a, 1).and_then(Value::as_int) else {
            return table(Vec::new());
        };
        self.rows(r.for_each(t, start, count_of(nth(a, 2))))
    }

    fn range(&self, r: &Ranking, tier: TierPath, arg: &Value) -> Value {
        let (Some(t), Value::Table(a)) = (tier.single(), arg) else {
            return table(Vec::new());
        };
        match nth(a, 1) {
            Some(Value::Str(id)) => {
                let delta = nth(a, 2).and_then(Value::as_int).unwrap_or(0);
                self.rows(r.range_around(t, id, delta, count_of(nth(a, 3))))
            }
            Some(v) => match v.as_int() {
                Some(max) => self.rows(r.range_by_score(t, &Score::Int(max), count_of(nth(a, 2)))),
                None => table(Vec::new()),
            },
            None => table(Vec::new()),
        }
    }
}
