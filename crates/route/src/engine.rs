//! [`Route`]: the engine that owns registrations and open probes.

use crate::config::RouteConfig;
use crate::error::RouteError;
use crate::event::{Event, FailReason, Published};
use crate::key::parse;
use crate::registry::{Entry, Match, Registry};
use crate::token::{Answer, Token};
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::Arc;

/// A unicast publication waiting for its first acceptance.
struct Probe<R, V> {
    publisher: R,
    request_key: Arc<str>,
    fail: Option<Arc<str>>,
    reply: Option<Arc<str>>,
    payload: V,
    deadline: u64,
    /// Candidates by token index; `None` once their probe was reported undeliverable.
    candidates: Vec<Option<Match<R>>>,
}

/// The subscription router of one route service.
///
/// `R` identifies a stage (the host's return address: process and stage name), `V` is the
/// opaque published values. Every command takes the host's clock as `now` in milliseconds,
/// first applies everything due by then (see [`Route::advance`]), and leaves the messages to
/// send in the event queue ([`Route::drain_events`]).
pub struct Route<R, V> {
    service: String,
    probe_timeout_ms: u64,
    registry: Registry<R>,
    last_publication: u64,
    probes: HashMap<u64, Probe<R, V>>,
    deadlines: BTreeSet<(u64, u64)>,
    events: Vec<Event<R, V>>,
}

impl<R: Clone + Eq + Hash, V> Route<R, V> {
    /// An engine with no registrations.
    pub fn new(config: RouteConfig) -> Self {
        Route {
            service: config.service,
            probe_timeout_ms: config.probe_timeout_ms,
            registry: Registry::new(config.keep_alive_ms),
            last_publication: 0,
            probes: HashMap::new(),
            deadlines: BTreeSet::new(),
            events: Vec::new(),
        }
    }

    /// Applies everything due by `now`: registrants silent for the keep-alive period are
    /// dropped, probes unanswered for the probe timeout fail.
    pub fn advance(&mut self, now: u64) {
        self.registry.expire(now);
        while let Some(&(at, publication)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.fail(publication, FailReason::Timeout);
        }
    }

    /// The earliest time at which [`Route::advance`] has something to do, if any.
    pub fn next_due(&self) -> Option<u64> {
        let probe = self.deadlines.first().map(|&(at, _)| at);
        probe.into_iter().chain(self.registry.next_expiry()).min()
    }

    /// Applies a registration table (`route:@ {id = value, ...}`) in order, creating the
    /// registration; refreshes the keep-alive. Invalid subscription ids refuse the whole table.
    pub fn register<S: Into<Arc<str>>>(
        &mut self,
        now: u64,
        who: R,
        entries: impl IntoIterator<Item = (S, Entry)>,
    ) -> Result<(), RouteError> {
        self.advance(now);
        let entries = entries
            .into_iter()
            .map(|(id, entry)| (id.into(), entry))
            .collect();
        self.registry.apply(now, who, entries)
    }

    /// Keep-alive only (`route:@ true`).
    pub fn keep_alive(&mut self, now: u64, who: &R) -> Result<(), RouteError> {
        self.advance(now);
        self.registry
            .touch(now, who)
            .map(|_| ())
            .ok_or(RouteError::UnknownRegistrant)
    }

    /// Pauses every subscription of a stage for `ms` milliseconds (`route:@ ms`; `<= 0`
    /// resumes); refreshes the keep-alive, which runs independently of the pause.
    pub fn pause(&mut self, now: u64, who: &R, ms: i64) -> Result<(), RouteError> {
        self.advance(now);
        self.registry.pause(now, who, ms)
    }

    /// Removes a stage's registration completely (`route:@ nil`).
    pub fn unregister(&mut self, now: u64, who: &R) -> Result<(), RouteError> {
        self.advance(now);
        self.registry.unregister(who)
    }

    /// Publishes `payload` under `key` (the text after `route:`). A broadcast (`*id`) is
    /// delivered at once to every eligible registrant; a unicast probes every eligible
    /// registrant ([`Event::Probe`]) or fails at once when there is none.
    pub fn publish(
        &mut self,
        now: u64,
        publisher: R,
        key: &str,
        payload: V,
    ) -> Result<Published, RouteError>
    where
        V: Clone,
    {
        let target = parse(key)?;
        self.advance(now);
        let request_key: Arc<str> = format!("{}:{key}", self.service).into();
        let reply = target.reply.map(Arc::from);
        let matches = self.registry.eligible(now, &target.ids);
        if target.broadcast {
            let count = matches.len();
            for found in matches {
                self.events.push(Event::Deliver {
                    to: found.who,
                    callbacks: reply_callbacks(found.callbacks, reply.as_deref()),
                    request_key: request_key.clone(),
                    reply_to: publisher.clone(),
                    payload: payload.clone(),
                });
            }
            return Ok(Published::Delivered(count));
        }
        let fail = target.fail.map(Arc::from);
        if matches.is_empty() {
            self.events.push(Event::Failed {
                publisher,
                callback: fail,
                request_key,
                payload,
                reason: FailReason::NoSubscriber,
            });
            return Ok(Published::Failed);
        }
        self.last_publication += 1;
        let publication = self.last_publication;
        let probes = (0u32..)
            .zip(&matches)
            .map(|(candidate, found)| {
                let token = Token {
                    publication,
                    candidate,
                };
                (found.who.clone(), token)
            })
            .collect::<Vec<_>>();
        let count = probes.len();
        self.events.push(Event::Probe {
            target: key.into(),
            probes,
        });
        let deadline = now.saturating_add(self.probe_timeout_ms);
        self.deadlines.insert((deadline, publication));
        self.probes.insert(
            publication,
            Probe {
                publisher,
                request_key,
                fail,
                reply,
                payload,
                deadline,
                candidates: matches.into_iter().map(Some).collect(),
            },
        );
        Ok(Published::Probing(count))
    }

    /// Takes a probe answer (a string sent to `route:@`, decision 36): the first acceptance of
    /// a publication delivers it to that candidate's callbacks — those named by a `?cb,...`
    /// filter, or all matching ones — and closes it; later answers are refused. Candidates and
    /// their callbacks are fixed when the probes go out.
    pub fn accept(&mut self, now: u64, answer: &str) -> Result<(), RouteError> {
        let parsed = Answer::parse(answer)?;
        self.advance(now);
        let token = parsed.token;
        let unknown = || RouteError::UnknownToken(answer.to_owned());
        let probe = self.probes.get(&token.publication).ok_or_else(unknown)?;
        let candidate = usize::try_from(token.candidate)
            .ok()
            .and_then(|index| probe.candidates.get(index))
            .and_then(Option::as_ref)
            .ok_or_else(unknown)?;
        let callbacks: Vec<Arc<str>> = match &parsed.filter {
            Some(filter) => candidate
                .callbacks
                .iter()
                .filter(|callback| filter.contains(&&***callback))
                .cloned()
                .collect(),
            None => candidate.callbacks.clone(),
        };
        if callbacks.is_empty() {
            return Err(RouteError::NoMatchingCallback(answer.to_owned()));
        }
        let to = candidate.who.clone();
        let Some(probe) = self.close(token.publication) else {
            return Err(unknown());
        };
        self.events.push(Event::Deliver {
            to,
            callbacks: reply_callbacks(callbacks, probe.reply.as_deref()),
            request_key: probe.request_key,
            reply_to: probe.publisher,
            payload: probe.payload,
        });
        Ok(())
    }

    /// Reports that the probe behind `token` could not be sent: that candidate is dropped, and
    /// the publication fails at once when no candidate is left.
    pub fn probe_failed(&mut self, now: u64, token: Token) -> Result<(), RouteError> {
        self.advance(now);
        let unknown = || RouteError::UnknownToken(token.to_string());
        let probe = self
            .probes
            .get_mut(&token.publication)
            .ok_or_else(unknown)?;
        let slot = usize::try_from(token.candidate)
            .ok()
            .and_then(|index| probe.candidates.get_mut(index))
            .ok_or_else(unknown)?;
        *slot = None;
        if probe.candidates.iter().all(Option::is_none) {
            self.fail(token.publication, FailReason::Undeliverable);
        }
        Ok(())
    }

    /// Takes the events emitted so far, oldest first.
    pub fn drain_events(&mut self) -> std::vec::Drain<'_, Event<R, V>> {
        self.events.drain(..)
    }

    /// How many stages are registered.
    pub fn registrants(&self) -> usize {
        self.registry.len()
    }

    /// How many unicast publications wait for an answer.
    pub fn open_probes(&self) -> usize {
        self.probes.len()
    }

    fn close(&mut self, publication: u64) -> Option<Probe<R, V>> {
        let probe = self.probes.remove(&publication)?;
        self.deadlines.remove(&(probe.deadline, publication));
        Some(probe)
    }

    fn fail(&mut self, publication: u64, reason: FailReason) {
        if let Some(probe) = self.close(publication) {
            self.events.push(Event::Failed {
                publisher: probe.publisher,
                callback: probe.fail,
                request_key: probe.request_key,
                payload: probe.payload,
                reason,
            });
        }
    }
}

/// The callback ids a delivery invokes: with a `=return` callback, each registered id's own
/// `=...` part is replaced by it.
fn reply_callbacks(callbacks: Vec<Arc<str>>, reply: Option<&str>) -> Vec<Arc<str>> {
    match reply {
        None => callbacks,
        Some(reply) => callbacks
            .iter()
            .map(|callback| {
                let base = callback
                    .split_once('=')
                    .map_or(&**callback, |(base, _)| base);
                format!("{base}={reply}").into()
            })
            .collect(),
    }
}
