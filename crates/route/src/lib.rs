//! The route engine: topic routing between stages with probes (`spec/route.md`, decision 36 of
//! `spec/README.md`).
//!
//! Stages register subscriptions (`route:@ {id = "callback"}`), keep them alive at least every
//! 30 s, and may pause or disable them, one by one or all at once. A publication
//! (`route:id[?argument][!fail][=return]`) is either broadcast to every eligible subscriber
//! (`*id`) or probed: every eligible registrant gets one probe, the first acceptance (the
//! token sent back) wins, and without one within 300 ms the publisher's `!fail` callback runs.
//! Ids without eligible subscribers fall back to their groups (`game.kr.login` → `game.kr.` →
//! `game.`). The subscriber sees the publisher as the delivery's return address.
//!
//! The engine is pure: commands go in ([`Route::register`], [`Route::publish`],
//! [`Route::accept`], [`Route::advance`], …), [`Event`]s come out ([`Route::drain_events`]) for
//! the host to turn into Lua messages, and [`Route::next_due`] tells the host when to call
//! [`Route::advance`] next. Time is only the `now` in milliseconds passed to every call.
//!
//! [`RouteService`] runs the engine as the `=route` service of a node (module [`service`]).

pub mod config;
pub mod engine;
pub mod error;
pub mod event;
pub mod key;
pub mod registry;
pub mod service;
pub mod token;

pub use config::RouteConfig;
pub use engine::Route;
pub use error::RouteError;
pub use event::{Event, FailReason, Published};
pub use registry::Entry;
pub use service::RouteService;
pub use token::{Answer, Token};
