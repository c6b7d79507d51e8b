//! [`Message`]: what moves between stages, whatever boundary it crosses.

use crate::Args;
use std::sync::Arc;

/// One message: a payload key, its values, who sent it and until when it is worth handling.
#[derive(Clone, Debug)]
pub struct Message {
    /// The payload key, `"<target id>:<message id>"` (verbatim for multi-message tables).
    pub key: String,
    pub values: Args,
    /// Where an automatic reply goes; `None` when no reply is possible (replies, sync calls).
    pub sender: Option<Sender>,
    /// Absolute wall-clock deadline in ms; a message not started by then is dropped.
    pub deadline_ms: Option<u64>,
    /// Globals set for the handler's invocation only (the `.name` elements of `sandbox.md`
    /// §11.3), e.g. `_TICKET` for a ticket grant.
    pub globals: Vec<(String, crate::Value)>,
}

/// The return address of a message: `_WAITFOR[1]` and `_WAITFOR[2]` at its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The opaque reply address of the sending instance.
    pub address: Arc<str>,
    /// The sender's stage id; `None` when it expects no reply (sender without id, replies).
    pub stage: Option<Arc<str>>,
}

impl Sender {
    /// The payload key of message `msg` for the sender's stage (`msg` itself when it has no id).
    pub fn key(&self, msg: &str) -> String {
        match &self.stage {
            Some(stage) => [&**stage, msg].join(":"),
            None => msg.to_string(),
        }
    }
}

impl Message {
    /// A message with no return address and no deadline.
    pub fn new(key: impl Into<String>, values: Args) -> Message {
        Message {
            key: key.into(),
            values,
            sender: None,
            deadline_ms: None,
            globals: Vec::new(),
        }
    }

    /// The message id for the stage `id`: the key without its `"<id>:"` prefix, or `None`
    /// when the key is addressed to another stage.
    pub fn id_for<'a>(&'a self, id: &str) -> Option<&'a str> {
        self.key
            .strip_prefix(id)
            .and_then(|rest| rest.strip_prefix(':'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_for_strips_only_the_own_prefix() {
        let m = Message::new("game:login=ok", Args::new());
        assert_eq!(m.id_for("game"), Some("login=ok"));
        assert_eq!(m.id_for("gam"), None);
        assert_eq!(m.id_for("lobby"), None);
    }
}
