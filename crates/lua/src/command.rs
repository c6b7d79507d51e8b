//! [`StageCommand`]: what the worker jobs acting for a stage ask of its stage thread, through
//! the stage's mailbox and in order with the messages they send.

use stage_core::{Message, Value};
use std::sync::Arc;

/// One command for a stage thread from a job acting for it.
pub enum StageCommand {
    /// `stage.waitfor(name, fn, ...)` in a job: registers shipped bytecode; `args` `None` keeps
    /// earlier registration arguments.
    Register {
        name: String,
        code: Arc<[u8]>,
        args: Option<Vec<Value>>,
    },
    /// `stage.waitfor(name, nil)` in a job.
    Unregister(String),
    /// `stage.waitfor(name, v, ...)` in a job.
    SetArgs { name: String, args: Vec<Value> },
    /// A `thread.new` job ended, with the message of its return values to its callback when
    /// it returned normally (one mailbox entry for both): the callback goes
    /// [`THREAD_CALLBACK_LINGER_MS`] later.
    ThreadDone {
        callback: String,
        last: Option<Message>,
    },
}

/// How long a `thread.new` callback stays registered after its job ended (`runtime.md` §9.8).
pub const THREAD_CALLBACK_LINGER_MS: u64 = 1000;
