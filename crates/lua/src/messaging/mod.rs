//! The path of a message through the Lua host: [`send`] builds and routes what a script
//! sends, [`reply`] answers a message, [`deliver`] hands a stage's incoming messages to its
//! handlers, and [`fast`] is the stage thread's fast path layered over them (sends and local
//! queue in Lua, with `plain`'s C functions for the hottest sends).

pub mod deliver;
pub mod fast;
pub(crate) mod plain;
pub mod reply;
pub mod send;
