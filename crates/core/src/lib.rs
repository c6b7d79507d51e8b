//! The pieces of stage that know nothing of Lua or sockets: the [`Value`] that every message
//! carries, the address grammar of `stage.signal`, message-id matching, the message envelope
//! and its wire form, mailboxes, the in-process router, the service trait, the I/O runtime
//! and the metrics registry.

pub mod address;
pub mod bson;
pub mod clock;
pub mod io;
pub mod mailbox;
pub mod matching;
pub mod message;
pub mod metrics;
pub mod router;
pub mod service;
pub mod value;
pub mod wire;

pub use message::{Message, PayloadKey, ReplyAddress, Sender};
pub use value::{Args, Bytes, Key, Table, Value};
