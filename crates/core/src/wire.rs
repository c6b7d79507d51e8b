//! A [`Message`] as bytes, for the transports that leave the process (local IPC, NATS): one
//! BSON document, so that every boundary moves the same envelope unchanged.
//!
//! | key | element | field |
//! |---|---|---|
//! | `k` | string | the payload key, as it is written |
//! | `v` | document `{ "#1": …, "#2": … }` | the values, in order (nil kept) |
//! | `n` | int64 | how many values (trailing nils are values too) |
//! | `a` | string | the sender's reply address (absent: no sender) |
//! | `s` | string | the sender's stage id (absent: none) |
//! | `d` | int64 | the deadline in wall-clock ms (absent: none) |
//! | `g` | document `{ name: value }` | the invocation globals, in order (absent: none) |
//!
//! Values use the mapping of [`crate::bson`] (functions as gzip-compressed bytecode).

use crate::bson::{self, BsonError};
use crate::message::{Message, PayloadKey, ReplyAddress, Sender};
use crate::value::{Args, Key, Table, Value};

/// Why bytes could not be read as a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error(transparent)]
    Bson(#[from] BsonError),
    /// A field is missing or of the wrong type.
    #[error("malformed message envelope: {0}")]
    Field(&'static str),
}

/// Encodes a message as one BSON document.
pub fn encode(message: &Message) -> Vec<u8> {
    let mut doc = Table::default();
    doc.push(Key::str("k"), Value::str(message.key.as_str()));
    let values = message
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| (Key::Int(i as i64 + 1), v.clone()))
        .collect();
    doc.push(Key::str("v"), Value::Table(Table(values)));
    doc.push(Key::str("n"), Value::Int(message.values.len() as i64));
    if let Some(sender) = &message.sender {
        doc.push(Key::str("a"), Value::str(sender.address.as_str()));
        if let Some(stage) = &sender.stage {
            doc.push(Key::str("s"), Value::str(&**stage));
        }
    }
    if let Some(deadline) = message.deadline_ms {
        doc.push(
            Key::str("d"),
            Value::Int(i64::try_from(deadline).unwrap_or(i64::MAX)),
        );
    }
    if !message.globals.is_empty() {
        let globals = message
            .globals
            .iter()
            .map(|(name, v)| (Key::str(name), v.clone()))
            .collect();
        doc.push(Key::str("g"), Value::Table(Table(globals)));
    }
    bson::encode_document(&doc)
}

/// Decodes a message written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let doc = bson::decode_document(bytes)?;
    let text = |key: &'static str| -> Result<Option<String>, WireError> {
        match doc.get_str(key) {
            None => Ok(None),
            Some(Value::Str(s)) => String::from_utf8(s.to_vec())
                .map(Some)
                .map_err(|_| WireError::Field(key)),
            Some(_) => Err(WireError::Field(key)),
        }
    };
    let key = text("k")?.ok_or(WireError::Field("k"))?;
    let count = match doc.get_str("n") {
        Some(Value::Int(n)) => usize::try_from(*n).map_err(|_| WireError::Field("n"))?,
        _ => return Err(WireError::Field("n")),
    };
    let Some(Value::Table(values)) = doc.get_str("v") else {
        return Err(WireError::Field("v"));
    };
    let mut args = Args::from_elem(Value::Nil, count);
    for (k, v) in &values.0 {
        let slot = match k {
            Key::Int(i) => usize::try_from(*i - 1).ok().and_then(|i| args.get_mut(i)),
            Key::Str(_) => None,
        };
        *slot.ok_or(WireError::Field("v"))? = v.clone();
    }
    let sender = text("a")?.map(|address| Sender {
        address: ReplyAddress::from(address.as_str()),
        stage: None,
    });
    let sender = match (sender, text("s")?) {
        (Some(sender), stage) => Some(Sender {
            stage: stage.map(Into::into),
            ..sender
        }),
        (None, None) => None,
        (None, Some(_)) => return Err(WireError::Field("s")),
    };
    let deadline_ms = match doc.get_str("d") {
        None => None,
        Some(Value::Int(d)) => Some(u64::try_from(*d).map_err(|_| WireError::Field("d"))?),
        Some(_) => return Err(WireError::Field("d")),
    };
    let globals = match doc.get_str("g") {
        None => Vec::new(),
        Some(Value::Table(t)) => {
            t.0.iter()
                .map(|(k, v)| match k {
                    Key::Str(name) => String::from_utf8(name.to_vec())
                        .map(|name| (name, v.clone()))
                        .map_err(|_| WireError::Field("g")),
                    Key::Int(_) => Err(WireError::Field("g")),
                })
                .collect::<Result<_, _>>()?
        }
        Some(_) => return Err(WireError::Field("g")),
    };
    Ok(Message {
        key: PayloadKey::verbatim(key),
        values: args,
        sender,
        deadline_ms,
        globals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn full() -> Message {
        let mut inner = Table::default();
        inner.push(Key::Int(1), Value::str("x"));
        inner.push(Key::str("name"), Value::Float(1.5));
        Message {
            key: PayloadKey::with_sender("rank", "game", "s?score=done"),
            values: Args::from_iter([
                Value::Int(7),
                Value::Nil,
                Value::Table(inner),
                Value::Function(Arc::from(&b"\x1bLua bytecode"[..])),
                Value::str(b"\x00\xff"),
                Value::Nil,
            ]),
            sender: Some(Sender {
                address: ReplyAddress::local(3, 9),
                stage: Some("game".into()),
            }),
            deadline_ms: Some(1_700_000_000_123),
            globals: vec![("_TICKET".into(), Value::Bool(true))],
        }
    }

    #[test]
    fn a_message_round_trips_with_every_field() {
        let message = full();
        let back = decode(&encode(&message)).expect("decode");
        assert_eq!(back, message);
        assert_eq!(back.key.msg_for(Some("rank")), Some("game:s?score=done"));
    }

    #[test]
    fn optional_fields_stay_absent() {
        let message = Message::new(PayloadKey::verbatim("kick"), Args::new());
        assert_eq!(decode(&encode(&message)), Ok(message));
        let mut reply = Message::new(PayloadKey::reply(Some("bots"), "a=b"), Args::new());
        reply.sender = Some(Sender {
            address: "local:1.1".into(),
            stage: None,
        });
        assert_eq!(decode(&encode(&reply)), Ok(reply));
    }

    #[test]
    fn damaged_envelopes_are_refused_with_the_field() {
        let bytes = encode(&full());
        assert!(matches!(
            decode(&bytes[..bytes.len() - 1]),
            Err(WireError::Bson(_))
        ));
        let mut doc = Table::default();
        doc.push(Key::str("k"), Value::Int(1));
        assert_eq!(
            decode(&bson::encode_document(&doc)),
            Err(WireError::Field("k"))
        );
        let mut doc = Table::default();
        doc.push(Key::str("k"), Value::str("a:b"));
        doc.push(Key::str("n"), Value::Int(1));
        let mut values = Table::default();
        values.push(Key::Int(5), Value::Int(1));
        doc.push(Key::str("v"), Value::Table(values));
        assert_eq!(
            decode(&bson::encode_document(&doc)),
            Err(WireError::Field("v"))
        );
    }
}
