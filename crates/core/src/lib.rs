//! The pieces of stage that know nothing of Lua or sockets: the [`Value`] that every message
//! carries, the address grammar of `stage.signal`, message-id matching, messages, the
//! in-process router and the metrics registry.

pub mod address;
pub mod bson;
pub mod mailbox;
pub mod matching;
pub mod message;
pub mod metrics;
pub mod router;
pub mod service;
pub mod value;

pub use message::{Message, Sender};
pub use value::{Args, Bytes, Key, Table, Value};
