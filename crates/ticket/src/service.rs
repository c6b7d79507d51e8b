//! [`TicketService`]: the engine as a `stage_core` service — messages in, Lua messages out.
//!
//! Every message addressed to `<id>:` is split by [`key::parse`] and the shape of its values,
//! handed to the engine with the service clock, and the engine's events are turned into
//! messages to the requesters' reply addresses:
//!
//! * a grant invokes `<stage>:<cb>=<id>:@<hex>` with `_TICKET` set for the call and the
//!   service as `_WAITFOR[1]` (`_WAITFOR[2]` nil), so `stage.signal(nil, ms)` inside the
//!   callback arrives here as `<id>:@<hex>` — a renewal or release (decision 35);
//! * feedback goes to `<stage>:<fb>`, cancel notices to `<stage>:<id>:@`, broadcasts to
//!   `<stage>:<id>:<cat>`.
//!
//! Bad input is logged as one WARN line (target `ticket`) and changes nothing.

use crate::engine::Ticket;
use crate::error::TicketError;
use crate::event::{Event, Feedback, Outcome, Rejection};
use crate::id::RequestId;
use crate::key::{self, Key};
use crate::millis::integral;
use crate::TicketConfig;
use stage_core::service::{Service, ServiceContext};
use stage_core::{value, Args, Message, PayloadKey, Sender, Table, Value};

/// A requester: the reply address of the stage instance that sent a request, and its stage id.
pub type Requester = Sender;

/// Why a message was refused; it is logged and nothing changes.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The engine refused the command.
    #[error(transparent)]
    Engine(#[from] TicketError),
    /// A request came without a return address, so nobody could be granted.
    #[error("`{0}` carries no return address: nobody to grant")]
    NoRequester(String),
    /// The values do not fit the key's form.
    #[error("`{key}` expects {expected}")]
    Values {
        /// The message key.
        key: String,
        /// What the form needs.
        expected: &'static str,
    },
    /// The request table is full (decision 17: the request is rejected).
    #[error("`{0}` rejected: the request table is full (raise the capacity)")]
    Capacity(String),
}

/// The ticket service of one `=ticket+NAME` startup entry.
pub struct TicketService {
    engine: Ticket<Requester, Args>,
    /// Events taken from the engine, kept to reuse the allocation.
    pending: Vec<Event<Requester, Args>>,
}

impl TicketService {
    /// A service with the configured capacity and categories; refuses invalid category names.
    pub fn new(config: TicketConfig) -> Result<Self, TicketError> {
        Ok(TicketService {
            engine: Ticket::new(config)?,
            pending: Vec::new(),
        })
    }

    /// Applies one message addressed to this service; `labels` receives the table keys of a
    /// multi-request, in order.
    fn command(
        &mut self,
        now: u64,
        message: Message,
        labels: &mut Vec<value::Key>,
    ) -> Result<(), Refused> {
        let Message {
            key,
            values,
            sender: requester,
            ..
        } = message;
        let text = key.msg();
        let full_key = key.as_str();
        let values_refused = |expected| Refused::Values {
            key: full_key.to_owned(),
            expected,
        };
        let feedback_to = |requester: &Requester, fb: Option<&str>| {
            fb.map(|fb| Feedback {
                callback: requester.qualify(fb),
                key: full_key.to_owned(),
            })
        };
        match key::parse(text)? {
            Key::Request {
                category,
                callback,
                feedback,
            } => {
                let requester =
                    requester.ok_or_else(|| Refused::NoRequester(full_key.to_owned()))?;
                let callback = requester.qualify(callback);
                let feedback = feedback_to(&requester, feedback);
                let outcome = self
                    .engine
                    .request(now, requester, category, callback, values, feedback)?;
                capacity(full_key, [&outcome])
            }
            Key::Table { category, feedback } => {
                let requester =
                    requester.ok_or_else(|| Refused::NoRequester(full_key.to_owned()))?;
                let [Value::Table(table)] = values.as_slice() else {
                    return Err(values_refused("one table { callback = value, ... }"));
                };
                let mut echo = None;
                let mut entries = Vec::with_capacity(table.0.len());
                for (label, value) in &table.0 {
                    let one = Args::from_iter([value.clone()]);
                    match label {
                        value::Key::Str(s) if s.is_empty() => echo = Some(one),
                        _ => {
                            entries.push((requester.qualify(&label_text(label)), one));
                            labels.push(label.clone());
                        }
                    }
                }
                let feedback = feedback_to(&requester, feedback);
                let results = self
                    .engine
                    .request_many(now, requester, category, entries, echo, feedback)?;
                capacity(full_key, results.iter().map(|(_, outcome)| outcome))
            }
            Key::Broadcast { category } => {
                self.engine.broadcast(now, category, values)?;
                Ok(())
            }
            Key::At { text: name } => match values.as_slice() {
                [Value::Int(ms)] => self.renew(now, text, *ms),
                [Value::Float(ms)] => self.renew(now, text, integral(*ms)?),
                [Value::Table(table)] => {
                    let items = table
                        .0
                        .iter()
                        .filter(|(k, _)| matches!(k, value::Key::Int(_)));
                    self.configure(now, name, items.map(|(_, v)| v))
                        .ok_or_else(|| values_refused("a table { limit, close_ms }"))?
                }
                [_, _, ..] => self
                    .configure(now, name, values.iter())
                    .ok_or_else(|| values_refused("an integer limit, then a close delay"))?,
                _ => Err(values_refused(
                    "an integer (renew or release) or a limit and a close delay",
                )),
            },
        }
    }

    /// Renews (`ms > 0`) or releases the request named by `text` (`@hex`). A request that is
    /// gone already (released, expired) is not an error of the sender: it is only traced.
    fn renew(&mut self, now: u64, text: &str, ms: i64) -> Result<(), Refused> {
        match self.engine.renew(now, text.parse()?, ms) {
            Err(TicketError::UnknownRequest(id)) => {
                tracing::debug!(target: "ticket", "{id} is gone already");
                Ok(())
            }
            other => other.map(drop).map_err(Refused::from),
        }
    }

    /// Creates or reconfigures `category` from the first integer (the limit) and the second
    /// (the close delay) among `values`; non-integers are skipped. `None` without a limit.
    fn configure<'a>(
        &mut self,
        now: u64,
        category: &str,
        values: impl Iterator<Item = &'a Value>,
    ) -> Option<Result<(), Refused>> {
        let mut integers = values.filter_map(Value::as_int);
        let limit = integers.next()?;
        Some(
            self.engine
                .configure(now, category, limit, integers.next())
                .map_err(Refused::from),
        )
    }

    /// Sends every event the engine emitted; a grant that cannot be delivered is cancelled,
    /// which may emit more events.
    fn flush(&mut self, now: u64, ctx: &ServiceContext, labels: &[value::Key]) {
        let mut pending = std::mem::take(&mut self.pending);
        loop {
            pending.extend(self.engine.drain_events());
            if pending.is_empty() {
                break;
            }
            for event in pending.drain(..) {
                if let Some(undelivered) = send(ctx, event, labels) {
                    if let Err(e) = self.engine.cancel(now, undelivered) {
                        tracing::debug!(target: "ticket", "{}: {e}", ctx.id);
                    }
                }
            }
        }
        self.pending = pending;
    }
}

impl Service for TicketService {
    type Event = std::convert::Infallible;

    fn handle(&mut self, message: Message, ctx: &ServiceContext) {
        if message
            .deadline_ms
            .is_some_and(|deadline| stage_core::clock::wall_ms() >= deadline)
        {
            return;
        }
        if message.id_for(&ctx.id).is_none() {
            tracing::warn!(target: "ticket", "{}: message `{}` is not addressed to this service", ctx.id, message.key);
            return;
        }
        let now = ctx.now_ms();
        let mut labels = Vec::new();
        if let Err(e) = self.command(now, message, &mut labels) {
            tracing::warn!(target: "ticket", "{}: {e}", ctx.id);
        }
        self.flush(now, ctx, &labels);
    }

    fn tick(&mut self, now_ms: u64, ctx: &ServiceContext) {
        self.engine.advance(now_ms);
        self.flush(now_ms, ctx, &[]);
    }

    fn next_due(&self) -> Option<u64> {
        self.engine.next_due()
    }
}

/// Refuses the command (to log it) when one of its requests met a full request table.
fn capacity<'a>(key: &str, outcomes: impl IntoIterator<Item = &'a Outcome>) -> Result<(), Refused> {
    let full = outcomes
        .into_iter()
        .any(|outcome| *outcome == Outcome::Rejected(Rejection::Capacity));
    if full {
        Err(Refused::Capacity(key.to_owned()))
    } else {
        Ok(())
    }
}

/// A table key as a callback id: strings as they are, integers in decimal.
fn label_text(label: &value::Key) -> String {
    match label {
        value::Key::Int(n) => n.to_string(),
        value::Key::Str(s) => String::from_utf8_lossy(s).into_owned(),
    }
}

/// The value a feedback reports for an outcome: `true`, `false` or the request id.
fn outcome_value(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Granted(_) => Value::Bool(true),
        Outcome::Waiting(id) => Value::str(id.to_string()),
        Outcome::Rejected(_) => Value::Bool(false),
    }
}

/// Sends one event; returns the request whose grant could not be delivered, if any.
fn send(
    ctx: &ServiceContext,
    event: Event<Requester, Args>,
    labels: &[value::Key],
) -> Option<RequestId> {
    match event {
        Event::Granted {
            request,
            requester,
            callback,
            payload,
            ..
        } => {
            let mut key = String::with_capacity(callback.len() + ctx.id.len() + 19);
            key.push_str(&callback);
            key.push('=');
            key.push_str(&ctx.id);
            key.push(':');
            let ticket_at = key.len();
            request.push_to(&mut key);
            let ticket = Value::str(&key[ticket_at..]);
            let mut message = Message::new(PayloadKey::verbatim(key), payload);
            message.sender = Some(Sender {
                address: ctx.address.clone(),
                stage: None,
            });
            message.globals = vec![("_TICKET".to_owned(), ticket)];
            (!ctx.send_callback(&requester, &callback, message)).then_some(request)
        }
        Event::Feedback {
            requester,
            feedback,
            outcome,
        } => {
            let values = [Value::str(feedback.key), outcome_value(&outcome)];
            let message = Message::new(
                PayloadKey::verbatim(feedback.callback.as_str()),
                Args::from_iter(values),
            );
            ctx.send_callback(&requester, &feedback.callback, message);
            None
        }
        Event::FeedbackTable {
            requester,
            feedback,
            results,
            echo,
        } => {
            let mut table: Vec<(value::Key, Value)> = labels
                .iter()
                .zip(&results)
                .map(|(label, (_, outcome))| (label.clone(), outcome_value(outcome)))
                .collect();
            if let Some(value) = echo.and_then(|echo| echo.into_iter().next()) {
                table.push((value::Key::Str(value::Bytes::new()), value));
            }
            let values = [Value::str(feedback.key), Value::Table(Table(table))];
            let message = Message::new(
                PayloadKey::verbatim(feedback.callback.as_str()),
                Args::from_iter(values),
            );
            ctx.send_callback(&requester, &feedback.callback, message);
            None
        }
        Event::Cancelled {
            requester,
            requests,
        } => {
            let items = requests
                .into_iter()
                .map(|c| {
                    let id = value::Key::str(c.request.to_string().as_bytes());
                    (id, Value::str(c.callback.as_bytes()))
                })
                .collect();
            let values = [Value::str("cancel"), Value::Table(Table(items))];
            let key = requester.key(&format!("{}:@", ctx.id));
            ctx.send_to(
                &requester.address,
                Message::new(key, Args::from_iter(values)),
            );
            None
        }
        Event::Broadcast {
            category,
            targets,
            payload,
        } => {
            let msg = format!("{}:{category}", ctx.id);
            for target in targets {
                let message = Message::new(target.key(&msg), payload.clone());
                ctx.send_to(&target.address, message);
            }
            None
        }
    }
}
