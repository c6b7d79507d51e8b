//! [`RouteService`]: the engine as a `stage_core` service — messages in, Lua messages out.
//!
//! `<id>:@` carries registrations (a table, an integer pause, `true`, `nil`) and probe answers
//! (a string, decision 36: a probe invokes the subscriber's `<id>:@` handler with the service
//! as `_WAITFOR[1]` and `_WAITFOR[2]` nil, so `stage.signal(nil, token)` comes back here under
//! the same key). Every other `<id>:<target>` key is a publication. Deliveries go to
//! `<stage>:<callback>` with the publisher as return address; `!fail` callbacks to the
//! publisher. Bad input is logged as one WARN line (target `route`) and changes nothing.

use crate::engine::Route;
use crate::error::RouteError;
use crate::event::Event;
use crate::registry::Entry;
use crate::RouteConfig;
use stage_core::service::{Service, ServiceContext};
use stage_core::{value, Args, Message, Sender, Value};

/// A stage instance: its reply address and its stage id.
pub type Peer = Sender;

/// Sends `values` to `peer`'s `msg` handler with `reply_to` as return address; false when
/// nobody has the address.
fn send_to_peer(
    ctx: &ServiceContext,
    peer: &Peer,
    msg: &str,
    values: Args,
    reply_to: Option<Sender>,
) -> bool {
    let mut message = Message::new(peer.key(msg), values);
    message.sender = reply_to;
    ctx.send_to(&peer.address, message)
}

/// Why a message was refused; it is logged and nothing changes.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The engine refused the command.
    #[error(transparent)]
    Engine(#[from] RouteError),
    /// A publication without a return address, or a registration from a stage without an id.
    #[error("`{0}` needs a return address (a registration: a stage with an id)")]
    NoSender(String),
    /// A `route:@` value of no registration form.
    #[error(
        "`{key}` does not take a {found} value (a table, an integer, true, nil or a probe token)"
    )]
    Values {
        /// The message key.
        key: String,
        /// The Lua type of the value found.
        found: &'static str,
    },
    /// A registration entry whose value is of no entry form (it is skipped).
    #[error(
        "`{key}`: entry `{id}` ignored: a {found} is not a callback, a boolean, an integer or nil"
    )]
    Entry {
        /// The message key.
        key: String,
        /// The subscription id.
        id: String,
        /// The Lua type of the value found.
        found: &'static str,
    },
}

/// The route service of one `=route+NAME` startup entry.
pub struct RouteService {
    engine: Route<Peer, Args>,
    /// Events taken from the engine, kept to reuse the allocation.
    pending: Vec<Event<Peer, Args>>,
}

impl RouteService {
    /// A service with no registrations.
    pub fn new(config: RouteConfig) -> Self {
        RouteService {
            engine: Route::new(config),
            pending: Vec::new(),
        }
    }

    /// Applies one message addressed to this service.
    fn command(&mut self, now: u64, message: Message) -> Result<(), Refused> {
        let Message {
            key,
            values,
            sender: peer,
            ..
        } = message;
        let text = key.msg();
        let key = key.as_str();
        if text != "@" {
            let publisher = peer.ok_or_else(|| Refused::NoSender(key.to_owned()))?;
            self.engine.publish(now, publisher, text, values)?;
            return Ok(());
        }
        let value = match values.as_slice() {
            [] => &Value::Nil,
            [value, ..] => value,
        };
        if let Value::Str(answer) = value {
            return match self.engine.accept(now, &String::from_utf8_lossy(answer)) {
                Err(e @ RouteError::UnknownToken(_)) => {
                    tracing::debug!(target: "route", "{e}");
                    Ok(())
                }
                other => other.map_err(Refused::from),
            };
        }
        let who = peer
            .filter(|peer| peer.stage.is_some())
            .ok_or_else(|| Refused::NoSender(key.to_owned()))?;
        match value {
            Value::Nil => self.engine.unregister(now, &who)?,
            Value::Bool(true) => self.engine.keep_alive(now, &who)?,
            Value::Int(_) | Value::Float(_) => match value.as_int() {
                Some(ms) => self.engine.pause(now, &who, ms)?,
                None => {
                    return Err(Refused::Values {
                        key: key.to_owned(),
                        found: "non-integral number",
                    })
                }
            },
            Value::Table(table) => {
                let entries = table.0.iter().filter_map(|(id, value)| {
                    let id = match id {
                        value::Key::Int(n) => n.to_string(),
                        value::Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
                    };
                    match entry(value) {
                        Some(entry) => Some((id, entry)),
                        None => {
                            let found = value.type_name();
                            let e = Refused::Entry {
                                key: key.to_owned(),
                                id,
                                found,
                            };
                            tracing::warn!(target: "route", "{e}");
                            None
                        }
                    }
                });
                self.engine.register(now, who, entries)?;
            }
            other => {
                return Err(Refused::Values {
                    key: key.to_owned(),
                    found: other.type_name(),
                })
            }
        }
        Ok(())
    }

    /// Sends every event the engine emitted; a probe that cannot be sent drops its candidate,
    /// which may fail the publication.
    fn flush(&mut self, now: u64, ctx: &ServiceContext) {
        let mut pending = std::mem::take(&mut self.pending);
        loop {
            pending.extend(self.engine.drain_events());
            if pending.is_empty() {
                break;
            }
            for event in pending.drain(..) {
                self.send(now, ctx, event);
            }
        }
        self.pending = pending;
    }

    fn send(&mut self, now: u64, ctx: &ServiceContext, event: Event<Peer, Args>) {
        match event {
            Event::Probe { target, probes } => {
                let msg = format!("{}:@", ctx.id);
                let service = Sender {
                    address: ctx.address.clone(),
                    stage: None,
                };
                for (to, token) in probes {
                    let values = [Value::str(target.as_bytes()), Value::str(token.to_string())];
                    if !send_to_peer(
                        ctx,
                        &to,
                        &msg,
                        Args::from_iter(values),
                        Some(service.clone()),
                    ) {
                        if let Err(e) = self.engine.probe_failed(now, token) {
                            tracing::debug!(target: "route", "{e}");
                        }
                    }
                }
            }
            Event::Deliver {
                to,
                callbacks,
                request_key,
                reply_to,
                payload,
            } => {
                let publisher = Sender {
                    address: reply_to.address,
                    stage: reply_to.stage,
                };
                for callback in callbacks {
                    let values = with_key(&request_key, &payload);
                    send_to_peer(ctx, &to, &callback, values, Some(publisher.clone()));
                }
            }
            Event::Failed {
                publisher,
                callback,
                request_key,
                payload,
                reason,
            } => match callback {
                Some(callback) => {
                    send_to_peer(
                        ctx,
                        &publisher,
                        &callback,
                        with_key(&request_key, &payload),
                        None,
                    );
                }
                None => tracing::debug!(target: "route", "{request_key} dropped: {reason:?}"),
            },
        }
    }
}

impl Service for RouteService {
    type Event = std::convert::Infallible;

    fn handle(&mut self, message: Message, ctx: &ServiceContext) {
        if message.id_for(&ctx.id).is_none() {
            tracing::warn!(target: "route", "{}: message `{}` is not addressed to this service", ctx.id, message.key);
            return;
        }
        let now = ctx.now_ms();
        if let Err(e) = self.command(now, message) {
            tracing::warn!(target: "route", "{}: {e}", ctx.id);
        }
        self.flush(now, ctx);
    }

    fn tick(&mut self, now_ms: u64, ctx: &ServiceContext) {
        self.engine.advance(now_ms);
        self.flush(now_ms, ctx);
    }

    fn next_due(&self) -> Option<u64> {
        self.engine.next_due()
    }
}

/// The registration entry a table value stands for (`route.md` §4), `None` for other types.
fn entry(value: &Value) -> Option<Entry> {
    match value {
        Value::Str(callback) => Some(Entry::callback(String::from_utf8_lossy(callback))),
        Value::Bool(true) => Some(Entry::Enable),
        Value::Bool(false) => Some(Entry::Disable),
        Value::Nil => Some(Entry::Remove),
        Value::Int(_) | Value::Float(_) => value.as_int().map(Entry::Pause),
        _ => None,
    }
}

/// A delivery's values: the request key, then every published value.
fn with_key(request_key: &str, payload: &Args) -> Args {
    std::iter::once(Value::str(request_key.as_bytes()))
        .chain(payload.iter().cloned())
        .collect()
}
