//! A [`Message`] as bytes, for the transports that leave the process (local IPC, NATS): one
//! BSON document, so that every boundary moves the same envelope unchanged.
//!
//! | key | element | field |
//! |---|---|---|
//! | `k` | string | the payload key, as it is written |
//! | `v` | document `{ "#1": …, "#2": … }` | the values, in order (nil kept as null) |
//! | `a` | string | the sender's reply address (absent: no sender) |
//! | `s` | string | the sender's stage id (absent: none) |
//! | `d` | int64 | the deadline in wall-clock ms (absent: none) |
//! | `g` | document `{ name: value }` | the invocation globals, in order (absent: none) |
//!
//! Values use the mapping of [`crate::bson`] (functions as gzip-compressed bytecode). Unknown
//! keys are ignored, so that a later version may add fields.

use crate::bson::{self, BsonError, DocumentWriter};
use crate::message::{Message, PayloadKey, ReplyAddress, Sender};
use crate::value::{Args, Key, Value};

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
    let mut doc = DocumentWriter::default();
    doc.element("k", &Value::str(message.key.as_str()));
    let values = (1..).map(Key::Int).zip(&message.values);
    doc.document("v", values);
    if let Some(sender) = &message.sender {
        doc.element("a", &Value::str(sender.address.as_str()));
        if let Some(stage) = &sender.stage {
            doc.element("s", &Value::str(&**stage));
        }
    }
    if let Some(deadline) = message.deadline_ms {
        doc.element(
            "d",
            &Value::Int(i64::try_from(deadline).unwrap_or(i64::MAX)),
        );
    }
    if !message.globals.is_empty() {
        let globals = message.globals.iter().map(|(name, v)| (Key::str(name), v));
        doc.document("g", globals);
    }
    doc.finish()
}

/// Decodes a message written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let (mut key, mut values, mut address, mut stage, mut deadline_ms, mut globals) =
        (None, None, None, None, None, Vec::new());
    for (name, value) in bson::decode_document(bytes)?.0 {
        let Key::Str(name) = name else { continue };
        match (name.as_slice(), value) {
            (b"k", value) => key = Some(text(value, "k")?),
            (b"v", Value::Table(t)) => {
                let mut args = Args::with_capacity(t.0.len());
                for (i, (k, v)) in t.0.into_iter().enumerate() {
                    if k != Key::Int(i as i64 + 1) {
                        return Err(WireError::Field("v"));
                    }
                    args.push(v);
                }
                values = Some(args);
            }
            (b"a", value) => address = Some(text(value, "a")?),
            (b"s", value) => stage = Some(text(value, "s")?),
            (b"d", Value::Int(d)) => {
                deadline_ms = Some(u64::try_from(d).map_err(|_| WireError::Field("d"))?)
            }
            (b"g", Value::Table(t)) => {
                for (k, v) in t.0 {
                    let Key::Str(k) = k else {
                        return Err(WireError::Field("g"));
                    };
                    let name = String::from_utf8(k.to_vec()).map_err(|_| WireError::Field("g"))?;
                    globals.push((name, v));
                }
            }
            (b"v", _) => return Err(WireError::Field("v")),
            (b"d", _) => return Err(WireError::Field("d")),
            (b"g", _) => return Err(WireError::Field("g")),
            _ => {}
        }
    }
    let sender = match (address, stage) {
        (Some(address), stage) => Some(Sender {
            address: ReplyAddress::from(address.as_str()),
            stage: stage.map(Into::into),
        }),
        (None, None) => None,
        (None, Some(_)) => return Err(WireError::Field("s")),
    };
    Ok(Message {
        key: PayloadKey::verbatim(key.ok_or(WireError::Field("k"))?),
        values: values.ok_or(WireError::Field("v"))?,
        sender,
        deadline_ms,
        globals,
    })
}

/// The UTF-8 text of a string element `field`.
fn text(value: Value, field: &'static str) -> Result<String, WireError> {
    match value {
        Value::Str(s) => String::from_utf8(s.to_vec()).map_err(|_| WireError::Field(field)),
        _ => Err(WireError::Field(field)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Table;
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
        let mut values = Table::default();
        values.push(Key::Int(5), Value::Int(1));
        doc.push(Key::str("v"), Value::Table(values));
        assert_eq!(
            decode(&bson::encode_document(&doc)),
            Err(WireError::Field("v"))
        );
    }
}
