//! The target grammar of `stage.signal` (`messaging.md` §6).
//!
//! Parsing borrows from the target text and allocates nothing: it runs on every send.

/// Which instances of a stage id a message may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One eligible instance, in rotation (no prefix).
    One,
    /// Every eligible instance (`*`).
    All,
    /// One instance on this node (`=`).
    Local,
    /// One instance registered over the network (`+`).
    Remote,
}

/// Which ordered-lock operation a lock target asks for (`messaging.md` §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOp {
    /// `>L.cb`: request the lock.
    Acquire,
    /// `>>L.x`: extend the lease.
    Extend,
    /// `<L.x`: release.
    Release,
}

/// A parsed `stage.signal` target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// `:msg`: the own stage's handler runs now, in the calling thread.
    Sync { msg: &'a str },
    /// `svc:msg`, `svc+msg`, `msg`, `me:msg`, `*msg` …; `stage` is `None` for the own id.
    Stage {
        scope: Scope,
        stage: Option<&'a str>,
        msg: &'a str,
        /// `svc+msg`: the payload key carries the sender's id (`svc:<me>:msg`).
        include_sender: bool,
        /// A prefixed form without a stage id (`*:msg`) or `msg`/`me:msg`: this instance only.
        this_instance: bool,
    },
    /// `@msg`: one instance of the own id, possibly this one.
    AnyOwn { msg: &'a str },
    /// `svc:` or `""` with a table of payload keys; `stage` is `None` for the own id.
    Multi { stage: Option<&'a str> },
    /// `>L.cb`, `>>L.x`, `<L.x`, optionally on behalf of `owner` (`svc:>L.cb`).
    Lock {
        op: LockOp,
        owner: Option<&'a str>,
        name: &'a str,
        rest: &'a str,
    },
}

/// A target that does not follow the grammar.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("lock target '{0}' needs a lock name and a '.' (e.g. '>name.callback')")]
    BadLock(String),
}

/// Parses a target; `own` is the sender's stage id (messages to it are self deliveries).
pub fn parse<'a>(target: &'a str, own: Option<&str>) -> Result<Target<'a>, AddressError> {
    let body = target.trim_start_matches(['*', '=', '+']);
    let scope = match target.as_bytes().first() {
        Some(b'*') if body.len() < target.len() => Scope::All,
        Some(b'=') if body.len() < target.len() => Scope::Local,
        Some(b'+') if body.len() < target.len() => Scope::Remote,
        _ => Scope::One,
    };
    let prefixed = scope != Scope::One;
    if body.starts_with(['>', '<']) {
        return lock(body, None);
    }
    let Some(sep) = body.find([':', '+']) else {
        return Ok(match body.strip_prefix('@') {
            _ if body.is_empty() => Target::Multi { stage: None },
            Some(msg) if !prefixed => Target::AnyOwn { msg },
            _ => Target::Stage {
                scope,
                stage: None,
                msg: body,
                include_sender: false,
                this_instance: !prefixed,
            },
        });
    };
    let (stage, rest) = (&body[..sep], &body[sep + 1..]);
    if body.as_bytes()[sep] == b'+' {
        return Ok(Target::Stage {
            scope,
            stage: Some(stage),
            msg: rest,
            include_sender: true,
            this_instance: false,
        });
    }
    if stage.is_empty() {
        return Ok(match prefixed {
            false => Target::Sync { msg: rest },
            true => Target::Stage {
                scope: Scope::One,
                stage: None,
                msg: rest,
                include_sender: false,
                this_instance: true,
            },
        });
    }
    if rest.starts_with(['>', '<']) {
        return lock(rest, Some(stage));
    }
    if rest.is_empty() {
        return Ok(Target::Multi { stage: Some(stage) });
    }
    let own_stage = own == Some(stage);
    Ok(Target::Stage {
        scope,
        stage: if own_stage { None } else { Some(stage) },
        msg: rest,
        include_sender: false,
        this_instance: own_stage && !prefixed,
    })
}

fn lock<'a>(text: &'a str, owner: Option<&'a str>) -> Result<Target<'a>, AddressError> {
    let (op, body) = if let Some(b) = text.strip_prefix(">>") {
        (LockOp::Extend, b)
    } else if let Some(b) = text.strip_prefix('>') {
        (LockOp::Acquire, b)
    } else {
        (LockOp::Release, &text[1..])
    };
    match body.split_once('.') {
        Some((name, rest)) if !name.is_empty() => Ok(Target::Lock {
            op,
            owner,
            name,
            rest,
        }),
        _ => Err(AddressError::BadLock(text.to_string())),
    }
}

/// The reply id of a message id: the text after its first `=`, or the whole id.
pub fn reply_id(msg_id: &str) -> &str {
    msg_id.split_once('=').map_or(msg_id, |(_, r)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage<'a>(scope: Scope, stage: Option<&'a str>, msg: &'a str, this: bool) -> Target<'a> {
        Target::Stage {
            scope,
            stage,
            msg,
            include_sender: false,
            this_instance: this,
        }
    }

    #[test]
    fn every_form_of_the_summary_table() {
        let me = Some("me");
        let p = |t| parse(t, me).unwrap();
        assert_eq!(p("svc:msg"), stage(Scope::One, Some("svc"), "msg", false));
        assert_eq!(p("*svc:msg"), stage(Scope::All, Some("svc"), "msg", false));
        assert_eq!(
            p("=svc:msg"),
            stage(Scope::Local, Some("svc"), "msg", false)
        );
        assert_eq!(
            p("+svc:msg"),
            stage(Scope::Remote, Some("svc"), "msg", false)
        );
        assert_eq!(p("me:msg"), stage(Scope::One, None, "msg", true));
        assert_eq!(p("msg"), stage(Scope::One, None, "msg", true));
        assert_eq!(p("*msg"), stage(Scope::All, None, "msg", false));
        assert_eq!(p("=msg"), stage(Scope::Local, None, "msg", false));
        assert_eq!(p("+msg"), stage(Scope::Remote, None, "msg", false));
        assert_eq!(p(":msg"), Target::Sync { msg: "msg" });
        assert_eq!(p("*:msg"), stage(Scope::One, None, "msg", true));
        assert_eq!(p("=:msg"), stage(Scope::One, None, "msg", true));
        assert_eq!(
            p("svc+msg"),
            Target::Stage {
                scope: Scope::One,
                stage: Some("svc"),
                msg: "msg",
                include_sender: true,
                this_instance: false
            }
        );
        assert_eq!(p("@msg"), Target::AnyOwn { msg: "msg" });
        assert_eq!(p("svc:"), Target::Multi { stage: Some("svc") });
        assert_eq!(p(""), Target::Multi { stage: None });
        assert_eq!(p("me:"), Target::Multi { stage: Some("me") });
        assert_eq!(
            p("calc:add=sum"),
            stage(Scope::One, Some("calc"), "add=sum", false)
        );
        assert_eq!(p("a:b:c.d"), stage(Scope::One, Some("a"), "b:c.d", false));
    }

    #[test]
    fn lock_forms() {
        assert_eq!(
            parse(">L.cb", None).unwrap(),
            Target::Lock {
                op: LockOp::Acquire,
                owner: None,
                name: "L",
                rest: "cb"
            }
        );
        assert_eq!(
            parse(">>L.x", None).unwrap(),
            Target::Lock {
                op: LockOp::Extend,
                owner: None,
                name: "L",
                rest: "x"
            }
        );
        assert_eq!(
            parse("svc:<L.x", None).unwrap(),
            Target::Lock {
                op: LockOp::Release,
                owner: Some("svc"),
                name: "L",
                rest: "x"
            }
        );
        assert!(parse(">nodot", None).is_err());
    }

    #[test]
    fn reply_ids() {
        assert_eq!(reply_id("add=sum"), "sum");
        assert_eq!(reply_id("add"), "add");
        assert_eq!(reply_id("a=b=c"), "b=c");
    }
}
