//! The pieces of stage that know nothing of Lua or sockets: the [`Value`] that every message
//! carries, the address grammar of `stage.signal`, message-id matching, envelopes and metrics.

pub mod value;

pub use value::{Args, Key, Table, Value};
