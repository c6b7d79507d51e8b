//! What the engine asks the host to send: [`Event`], and what a publish did: [`Published`].

use crate::token::Token;
use std::sync::Arc;

/// Why a unicast publication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// No subscriber was eligible, even through group fallback.
    NoSubscriber,
    /// No probe answer arrived within the probe timeout.
    Timeout,
    /// Every probe was reported undeliverable ([`crate::Route::probe_failed`]).
    Undeliverable,
}

/// A message the host must send. `R` is the host's stage address, `V` the published values.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<R, V> {
    /// Invoke each registrant's `route:@` handler with `(target, token text)`; the first
    /// acceptance wins ([`crate::Route::accept`]).
    Probe {
        /// The publisher's key after `route:`.
        target: Arc<str>,
        /// One probe per eligible registrant.
        probes: Vec<(R, Token)>,
    },
    /// Invoke each callback at `to` with `(request_key, values…)`, with `reply_to` (the
    /// publisher) as the message's return address.
    Deliver {
        /// The chosen subscriber.
        to: R,
        /// The callback ids to invoke; `<callback>=<return>` when the publisher gave `=return`.
        callbacks: Vec<Arc<str>>,
        /// The publisher's full key, `route:` prefix included.
        request_key: Arc<str>,
        /// The publisher.
        reply_to: R,
        /// The published values.
        payload: V,
    },
    /// A unicast publication found no taker: invoke `callback` at `publisher` with
    /// `(request_key, values…)`, or drop the message when the publisher gave no `!fail`.
    Failed {
        /// The publisher.
        publisher: R,
        /// The publisher's `!fail` callback.
        callback: Option<Arc<str>>,
        /// The publisher's full key, `route:` prefix included.
        request_key: Arc<str>,
        /// The published values.
        payload: V,
        /// Why.
        reason: FailReason,
    },
}

/// What [`crate::Route::publish`] did at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// Probes went to this many registrants; an acceptance or a failure follows.
    Probing(usize),
    /// A broadcast was delivered to this many registrants (possibly none).
    Delivered(usize),
    /// A unicast found no eligible subscriber and failed at once.
    Failed,
}
