//! [`Message`]: the envelope that moves between stages, whatever boundary it crosses (thread,
//! process, machine), with its [`PayloadKey`] and the [`ReplyAddress`] of its sender.
//!
//! Every payload key is built here: a key for a stage and a message id, a key taken verbatim
//! from a multi-message table, the key of a reply. Receivers read the target and the message id
//! the key was built from instead of splitting a string again. [`crate::wire`] turns a message
//! into bytes and back for the transports that leave the process.

use crate::address::reply_id;
use crate::Args;
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

/// One message: a payload key, its values, who sent it and until when it is worth handling.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub key: PayloadKey,
    pub values: Args,
    /// Where an automatic reply goes; `None` when no reply is possible (replies, sync calls).
    pub sender: Option<Sender>,
    /// Absolute wall-clock deadline in ms; a message not started by then is dropped.
    pub deadline_ms: Option<u64>,
    /// Globals set for the handler's invocation only (the `.name` elements of `sandbox.md`
    /// §11.3), e.g. `_TICKET` for a ticket grant.
    pub globals: Vec<(String, crate::Value)>,
}

/// The payload key of a message (`messaging.md` §1): `"<target id>:<message id>"`, or any text
/// taken verbatim from a multi-message table. It keeps where the target id ends, so that the
/// receiver gets its message id without searching the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PayloadKey {
    text: String,
    /// The byte offset of the `:` that ends the target id, if the key has one.
    colon: Option<usize>,
}

impl PayloadKey {
    /// The key of message `msg` for stage `target`; `msg` alone when there is no target id (a
    /// stage without an id receives its message ids as they are).
    pub fn new(target: Option<&str>, msg: &str) -> PayloadKey {
        match target {
            Some(target) => PayloadKey {
                text: [target, msg].join(":"),
                colon: Some(target.len()),
            },
            None => PayloadKey::verbatim(msg),
        }
    }

    /// The key of message `msg` for stage `target`, carrying the sender's id `from` in front of
    /// the message id (the `svc:<S>:msg` form of `messaging.md` §6.4).
    pub fn with_sender(target: &str, from: &str, msg: &str) -> PayloadKey {
        PayloadKey {
            text: [target, from, msg].join(":"),
            colon: Some(target.len()),
        }
    }

    /// A key used as it is written (a multi-message table's keys, a service's reply key): its
    /// target id is what stands before its first `:`.
    pub fn verbatim(text: impl Into<String>) -> PayloadKey {
        let text = text.into();
        let colon = text.find(':');
        PayloadKey { text, colon }
    }

    /// The key of the reply to message `msg_id` for the sender's stage `to` (`add=sum` is
    /// answered as `sum`, `messaging.md` §7); empty when there is nothing to reply to.
    pub fn reply(to: Option<&str>, msg_id: &str) -> PayloadKey {
        let reply = reply_id(msg_id);
        match to {
            Some(to) => PayloadKey::new(Some(to), reply),
            None => PayloadKey::verbatim(reply),
        }
    }

    /// The whole key as it is written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the key is empty (a reply with nothing to reply to).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The message id for the receiving stage `id`: the key without its `"<id>:"` prefix, or
    /// `None` when the key is addressed to another stage. A stage without an id receives the
    /// whole key.
    pub fn msg_for(&self, id: Option<&str>) -> Option<&str> {
        match id {
            None => Some(&self.text),
            Some(id) => match self.colon {
                Some(at) if &self.text[..at] == id => Some(&self.text[at + 1..]),
                _ => None,
            },
        }
    }

    /// The message id after the target id (the whole key when it has none).
    pub fn msg(&self) -> &str {
        match self.colon {
            Some(at) => &self.text[at + 1..],
            None => &self.text,
        }
    }
}

impl fmt::Debug for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl fmt::Display for PayloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The reply address of one instance (a Lua stage or a service): where messages for exactly
/// that instance go, `_WAITFOR[1]` at the stages it sends to. Opaque to scripts; the node
/// makes it, the router resolves it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyAddress(Arc<str>);

impl ReplyAddress {
    /// The address of the instance `tag` of the process `process` on this node:
    /// `local:<process>.<tag>`.
    pub fn local(process: u32, tag: u64) -> ReplyAddress {
        ReplyAddress(format!("local:{process}.{tag}").into())
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ReplyAddress {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ReplyAddress {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ReplyAddress {
    /// An address read back from a script or the wire.
    fn from(text: &str) -> ReplyAddress {
        ReplyAddress(text.into())
    }
}

impl fmt::Debug for ReplyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ReplyAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The return address of a message: `_WAITFOR[1]` and `_WAITFOR[2]` at its receiver.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sender {
    /// The reply address of the sending instance.
    pub address: ReplyAddress,
    /// The sender's stage id; `None` when it expects no reply (sender without id, replies).
    pub stage: Option<Arc<str>>,
}

impl Sender {
    /// The payload key of message `msg` for the sender's stage (`msg` itself when it has no id).
    pub fn key(&self, msg: &str) -> PayloadKey {
        PayloadKey::new(self.stage.as_deref(), msg)
    }

    /// A callback id qualified with the sender's stage id (`"<stage>:<cb>"`), unless it names
    /// a stage already or the sender has no id (`ticket.md` §5.1 rule 3, `index.md` §4).
    pub fn qualify(&self, callback: &str) -> String {
        match &self.stage {
            Some(stage) if !callback.contains(':') => [&**stage, callback].join(":"),
            _ => callback.to_owned(),
        }
    }
}

impl Message {
    /// A message with no return address and no deadline.
    pub fn new(key: PayloadKey, values: Args) -> Message {
        Message {
            key,
            values,
            sender: None,
            deadline_ms: None,
            globals: Vec::new(),
        }
    }

    /// The message id for the stage `id`: the key without its `"<id>:"` prefix, or `None`
    /// when the key is addressed to another stage.
    pub fn id_for<'a>(&'a self, id: &str) -> Option<&'a str> {
        self.key.msg_for(Some(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_for_strips_only_the_own_prefix() {
        let m = Message::new(PayloadKey::new(Some("game"), "login=ok"), Args::new());
        assert_eq!(m.id_for("game"), Some("login=ok"));
        assert_eq!(m.id_for("gam"), None);
        assert_eq!(m.id_for("lobby"), None);
        assert_eq!(m.key.as_str(), "game:login=ok");
    }

    #[test]
    fn keys_keep_their_target_and_message_id() {
        let k = PayloadKey::with_sender("svc", "me", "ping");
        assert_eq!((k.as_str(), k.msg()), ("svc:me:ping", "me:ping"));
        assert_eq!(k.msg_for(Some("svc")), Some("me:ping"));
        assert_eq!(k.msg_for(Some("me")), None);
        assert_eq!(k.msg_for(None), Some("svc:me:ping"));
        let v = PayloadKey::verbatim("game:kick");
        assert_eq!((v.msg_for(Some("game")), v.msg()), (Some("kick"), "kick"));
        let bare = PayloadKey::verbatim("kick");
        assert_eq!((bare.msg_for(Some("kick")), bare.msg()), (None, "kick"));
        assert_eq!(PayloadKey::new(None, "a:b").msg_for(None), Some("a:b"));
    }

    #[test]
    fn reply_keys_answer_the_reply_id() {
        assert_eq!(
            PayloadKey::reply(Some("bots"), "join=joined").as_str(),
            "bots:joined"
        );
        assert_eq!(PayloadKey::reply(None, "add").as_str(), "add");
        assert!(PayloadKey::reply(Some("x"), "").as_str() == "x:");
        assert!(PayloadKey::reply(None, "").is_empty());
    }

    #[test]
    fn callbacks_are_qualified_with_the_sender_stage_unless_they_name_one() {
        let game = Sender {
            address: "a".into(),
            stage: Some("game".into()),
        };
        assert_eq!(game.qualify("cb"), "game:cb");
        assert_eq!(game.qualify("other:cb"), "other:cb");
        let anonymous = Sender {
            address: "a".into(),
            stage: None,
        };
        assert_eq!(anonymous.qualify("cb"), "cb");
    }

    #[test]
    fn local_addresses_name_process_and_instance() {
        let a = ReplyAddress::local(2, 7);
        assert_eq!(a.as_str(), "local:2.7");
        assert_eq!(ReplyAddress::from("local:2.7"), a);
    }
}
