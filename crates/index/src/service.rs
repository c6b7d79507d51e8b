//! [`IndexService`]: the `index` service of a node — the message forms of [`crate::command`]
//! on an [`Index`], replies to the sender's stage, and the housekeeping of the files.
//!
//! * **Messages**: every message addressed to the service (`<id>:<message id>`) runs at once on
//!   the service thread, one after another. Its first value is the command argument (no value
//!   = nil; further values are ignored with a warning). A message whose deadline has passed is
//!   dropped.
//! * **Replies**: with a callback, one message carrying one argument (the result). A callback
//!   without `:` goes to the sending instance as `<sender stage>:<callback>` (or the bare
//!   callback when the sender has no stage id); `other:cb` goes to one instance of stage
//!   `other` (or to the sending instance when `other` is its own stage).
//! * **Problems** (bad command, wrong types, missing tier, refused entries, files that do not
//!   load) are logged as `WARN` lines with target `index`, naming the message and the problem;
//!   nothing is changed for the refused part.
//! * **Values** are stored as BSON ([`BsonCodec`]), so `max_value_bytes` limits the BSON size.
//! * **Housekeeping**: after a message that changed a file, a tick is scheduled `fsync_ms` later (1 s when every
//!   write is fsynced): it fsyncs the logs with unsynced records and, when a file's log has
//!   outgrown its threshold, compacts on a background thread (one compaction at a time).
//!   `stop` waits for a running compaction and fsyncs everything.
//! * **Start**: every file found under the directory is loaded; a file that refuses to load
//!   (corruption) is logged as an `ERROR` naming its path and byte offset, and requests on it
//!   reply nil, while the other files work normally.

use crate::command::{Commands, ValueCodec};
use crate::store::{Config, Durability, Index};
use stage_core::bson;
use stage_core::service::{Service, ServiceContext};
use stage_core::{Args, Message, PayloadKey, Sender, Value};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Stored values as BSON: a value is kept as the argument document of [`bson::encode_args`]
/// with this one value (`{ "v": <element> }`), which round-trips every single [`Value`]
/// (tables, sequences, strings with NULs, functions, nil) — a bare value is not a document.
#[derive(Clone, Copy, Debug, Default)]
pub struct BsonCodec;

impl ValueCodec for BsonCodec {
    fn encode(&self, value: &Value) -> Result<Vec<u8>, String> {
        Ok(bson::encode_args(std::slice::from_ref(value)))
    }

    fn decode(&self, bytes: &[u8]) -> Result<Value, String> {
        let decoded = bson::decode_args(bytes).map_err(|e| e.to_string())?;
        Ok(decoded.args.into_iter().next().unwrap_or(Value::Nil))
    }
}

/// How long after a message the housekeeping tick comes when every write is fsynced anyway
/// (it then only checks for compaction).
const COMPACTION_CHECK: Duration = Duration::from_secs(1);

/// The `index` service: see the module documentation.
pub struct IndexService {
    index: Arc<Index>,
    codec: BsonCodec,
    housekeeping_ms: u64,
    due: Option<u64>,
    compaction: Option<JoinHandle<()>>,
}

impl IndexService {
    /// The service on the files of `config`: loads every file already in its directory,
    /// logging what each load found (or why a file refuses to load).
    pub fn new(config: Config) -> IndexService {
        let housekeeping = match config.durability {
            Durability::Always => COMPACTION_CHECK,
            Durability::Periodic(every) => every,
        };
        let index = Arc::new(Index::new(config));
        for (name, loaded) in index.load_all() {
            match loaded {
                Ok(r) if r.dropped_bytes > 0 => tracing::warn!(
                    target: "index",
                    "{name}: {} IDs loaded; {} bytes of an interrupted write at the end of the \
                     log were dropped",
                    r.ids,
                    r.dropped_bytes
                ),
                Ok(r) => tracing::info!(
                    target: "index",
                    "{name}: {} IDs loaded ({}snapshot, {} log records)",
                    r.ids,
                    if r.from_snapshot { "" } else { "no " },
                    r.log_records
                ),
                Err(e) => tracing::error!(target: "index", "{name} refuses to load: {e}"),
            }
        }
        IndexService {
            index,
            codec: BsonCodec,
            housekeeping_ms: u64::try_from(housekeeping.as_millis()).unwrap_or(u64::MAX),
            due: None,
            compaction: None,
        }
    }

    /// Joins a finished compaction; starts one when none runs and a file is due.
    fn compact_if_due(&mut self) {
        if self
            .compaction
            .as_ref()
            .is_some_and(JoinHandle::is_finished)
        {
            self.finish_compaction();
        }
        if self.compaction.is_some() || !self.index.compaction_due() {
            return;
        }
        let index = self.index.clone();
        let spawned = std::thread::Builder::new()
            .name("index compaction".into())
            .spawn(move || {
                for (name, done) in index.compact_due() {
                    match done {
                        Ok(r) => tracing::info!(
                            target: "index",
                            "{name}: compacted {} IDs into a snapshot of {} bytes (updates held at \
                             most {:?} at once)",
                            r.ids,
                            r.snapshot_bytes,
                            r.writers_blocked
                        ),
                        Err(e) => {
                            tracing::error!(target: "index", "{name}: compaction failed: {e}")
                        }
                    }
                }
            });
        match spawned {
            Ok(handle) => self.compaction = Some(handle),
            Err(e) => tracing::error!(target: "index", "cannot start a compaction: {e}"),
        }
    }

    fn finish_compaction(&mut self) {
        if let Some(handle) = self.compaction.take() {
            if handle.join().is_err() {
                tracing::error!(target: "index", "the compaction thread panicked");
            }
        }
    }

    fn sync(&self) {
        for e in self.index.sync_all() {
            tracing::error!(target: "index", "fsync failed: {e}");
        }
    }
}

/// Sends the reply `value` for `callback` to the sender of a message (see the module doc).
fn send_reply(ctx: &ServiceContext, sender: &Sender, callback: &str, value: Value) {
    let callback = sender.qualify(callback);
    let message = Message::new(
        PayloadKey::verbatim(callback.as_str()),
        Args::from_iter([value]),
    );
    if !ctx.send_callback(sender, &callback, message) {
        tracing::debug!(target: "index", "reply {callback}: nobody to deliver it to");
    }
}

impl Service for IndexService {
    type Event = std::convert::Infallible;

    fn handle(&mut self, message: Message, ctx: &ServiceContext) {
        let Some(id) = message.id_for(&ctx.id) else {
            tracing::warn!(target: "index", "{}: not addressed to {}", message.key, ctx.id);
            return;
        };
        if message
            .deadline_ms
            .is_some_and(|d| stage_core::clock::wall_ms() >= d)
        {
            tracing::debug!(target: "index", "{}: deadline passed, dropped", message.key);
            return;
        }
        if message.values.len() > 1 {
            tracing::warn!(
                target: "index",
                "{}: {} values given, only the first is the argument",
                message.key,
                message.values.len()
            );
        }
        let arg = message.values.first().unwrap_or(&Value::Nil);
        let reply = Commands::new(&self.index, &self.codec).handle(id, arg);
        for problem in &reply.problems {
            tracing::warn!(target: "index", "{}: {problem}", message.key);
        }
        if reply.wrote && self.due.is_none() {
            self.due = Some(ctx.now_ms().saturating_add(self.housekeeping_ms));
        }
        let Some(callback) = reply.callback else {
            return;
        };
        match &message.sender {
            Some(sender) => send_reply(ctx, sender, &callback, reply.value),
            None => tracing::warn!(
                target: "index",
                "{}: no sender to reply to ({callback})",
                message.key
            ),
        }
    }

    fn tick(&mut self, now_ms: u64, _ctx: &ServiceContext) {
        self.due = None;
        self.sync();
        self.compact_if_due();
        if self.compaction.is_some() {
            // Come back to join it (and to check again) even when no message arrives.
            self.due = Some(now_ms.saturating_add(self.housekeeping_ms));
        }
    }

    fn next_due(&self) -> Option<u64> {
        self.due
    }

    fn stop(&mut self, _ctx: &ServiceContext) {
        self.finish_compaction();
        self.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stage_core::{Key, Table};

    #[test]
    fn the_bson_codec_round_trips_single_values() {
        let codec = BsonCodec;
        let values = [
            Value::Nil,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(0.5),
            Value::str(b"a\0b"),
            Value::Table(Table(vec![
                (Key::Int(1), Value::str(b"x")),
                (Key::str(b"name"), Value::Int(2)),
            ])),
        ];
        for v in values {
            let bytes = codec.encode(&v).expect("encode");
            assert_eq!(codec.decode(&bytes).expect("decode"), v);
        }
        assert!(codec.decode(b"junk").is_err());
    }
}
