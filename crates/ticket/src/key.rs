//! The message keys of the ticket service (ticket.md §5.1), split into their parts.

use crate::error::TicketError;

/// What a key after `ticket:` names. Some forms are completed by the shape of the message's
/// values, which only the host sees; each variant says how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// `cat=cb` or `cat=cb?fb`: one request, whatever the values
    /// ([`crate::Ticket::request`]).
    Request {
        /// The category asked for.
        category: &'a str,
        /// The callback to invoke on grant (not yet qualified with the requester's stage).
        callback: &'a str,
        /// The feedback callback, when `?fb` was given.
        feedback: Option<&'a str>,
    },
    /// `=cat`: broadcast the values to the category's members ([`crate::Ticket::broadcast`]).
    Broadcast {
        /// The category whose members receive the values.
        category: &'a str,
    },
    /// `@text` without `=`. With a single integer value, `text` is a request id and the integer
    /// a renewal or release ([`crate::Ticket::renew`], parse it with
    /// [`crate::RequestId::from_str`](std::str::FromStr) on the whole key). With two or more
    /// values, or one table `{limit, close_ms}`, `text` is a category to create or reconfigure
    /// ([`crate::Ticket::configure`]). Anything else is ignored.
    At {
        /// The text after `@`.
        text: &'a str,
    },
    /// `cat` or `cat?fb`: with a table value, one request per non-empty table key
    /// ([`crate::Ticket::request_many`]); with anything else the message is ignored.
    Table {
        /// The category asked for.
        category: &'a str,
        /// The feedback callback, when `?fb` was given.
        feedback: Option<&'a str>,
    },
}

/// Splits a key (the text after `ticket:`) by the rules of ticket.md §5.1: the last `=` and
/// the last `?` decide. Names that break the naming rules are refused.
pub fn parse(key: &str) -> Result<Key<'_>, TicketError> {
    let malformed = |reason| TicketError::MalformedKey {
        key: key.to_owned(),
        reason,
    };
    let parsed = match key.rsplit_once('=') {
        Some(("", category)) => Key::Broadcast { category },
        Some((category, callback_part)) => {
            let (callback, feedback) = split_feedback(callback_part);
            Key::Request {
                category,
                callback,
                feedback,
            }
        }
        None => match key.strip_prefix('@') {
            Some("") => return Err(malformed("nothing after `@`")),
            Some(text) => Key::At { text },
            None => {
                let (category, feedback) = split_feedback(key);
                Key::Table { category, feedback }
            }
        },
    };
    match parsed {
        Key::Request {
            category,
            callback,
            feedback,
        } => {
            check_category(category)?;
            check_callback(callback)?;
            feedback.map(check_callback).transpose()?;
        }
        Key::Broadcast { category } => check_category(category)?,
        Key::Table { category, feedback } => {
            check_category(category)?;
            feedback.map(check_callback).transpose()?;
        }
        Key::At { .. } => {}
    }
    Ok(parsed)
}

fn split_feedback(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once('?') {
        Some((head, feedback)) => (head, Some(feedback)),
        None => (text, None),
    }
}

/// Refuses a category name that is empty or contains `=` or `?`.
pub fn check_category(name: &str) -> Result<(), TicketError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(TicketError::InvalidCategory(name.to_owned()))
    }
}

/// Refuses a callback or feedback id that is empty or contains `=` or `?`.
pub fn check_callback(name: &str) -> Result<(), TicketError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(TicketError::InvalidCallback(name.to_owned()))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['=', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_forms() {
        assert_eq!(
            parse("odbc=login_query"),
            Ok(Key::Request {
                category: "odbc",
                callback: "login_query",
                feedback: None
            })
        );
        assert_eq!(
            parse("odbc=stage:login?fb"),
            Ok(Key::Request {
                category: "odbc",
                callback: "stage:login",
                feedback: Some("fb")
            })
        );
    }

    #[test]
    fn broadcast_at_and_table_forms() {
        assert_eq!(parse("=room42"), Ok(Key::Broadcast { category: "room42" }));
        assert_eq!(parse("@55d0c3a0"), Ok(Key::At { text: "55d0c3a0" }));
        assert_eq!(parse("@room"), Ok(Key::At { text: "room" }));
        assert_eq!(
            parse("odbc?fb"),
            Ok(Key::Table {
                category: "odbc",
                feedback: Some("fb")
            })
        );
        assert_eq!(
            parse("odbc"),
            Ok(Key::Table {
                category: "odbc",
                feedback: None
            })
        );
    }

    #[test]
    fn malformed_keys_are_refused() {
        for bad in [
            "", "=", "@", "a=", "=a?b", "a?b=cb", "a=b=c", "a=cb?", "a?", "?fb",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
