//! Publish keys: `route:[*|+]id[,id...][?argument][!fail][=return]` split into their parts.

use crate::error::RouteError;

/// A parsed publish key (the text after `route:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// `*id`: deliver to every eligible subscriber without probing.
    pub broadcast: bool,
    /// The subscription ids whose subscribers are pooled.
    pub ids: Vec<&'a str>,
    /// The free text after `?`, for the probe handlers to judge.
    pub argument: Option<&'a str>,
    /// The publisher's callback invoked when nobody takes the message (`!fail`).
    pub fail: Option<&'a str>,
    /// The publisher's callback that receives the subscriber's answer (`=return`).
    pub reply: Option<&'a str>,
}

/// Splits a publish key: the ids end at the first `?`, `!` or `=`; the argument runs to the
/// next `!` or `=`; `!fail` and `=return` follow in either order, at most once each.
pub fn parse(key: &str) -> Result<Target<'_>, RouteError> {
    let malformed = |reason| RouteError::MalformedKey {
        key: key.to_owned(),
        reason,
    };
    let (broadcast, rest) = match key.strip_prefix('*') {
        Some(rest) => (true, rest),
        None => (false, key.strip_prefix('+').unwrap_or(key)),
    };
    let ids_end = rest.find(['?', '!', '=']).unwrap_or(rest.len());
    let (ids_text, mut tail) = rest.split_at(ids_end);
    let ids = ids_text
        .split(',')
        .map(|id| check_subscription(id).map(|()| id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut target = Target {
        broadcast,
        ids,
        argument: None,
        fail: None,
        reply: None,
    };
    while let Some(marker) = tail.chars().next() {
        let body = &tail[1..];
        let end = body.find(['!', '=']).unwrap_or(body.len());
        let (part, next) = body.split_at(end);
        let slot = match marker {
            '?' if target.argument.is_none() && target.fail.is_none() && target.reply.is_none() => {
                &mut target.argument
            }
            '!' if target.fail.is_none() => &mut target.fail,
            '=' if target.reply.is_none() => &mut target.reply,
            _ => return Err(malformed("`?`, `!` or `=` out of place or repeated")),
        };
        if marker != '?' && (part.is_empty() || part.contains('?')) {
            return Err(malformed("callback id empty or containing `?`"));
        }
        *slot = Some(part);
        tail = next;
    }
    Ok(target)
}

/// Refuses a subscription id that is empty or contains `?`, `!`, `=` or `,`.
pub fn check_subscription(id: &str) -> Result<(), RouteError> {
    if id.is_empty() || id.contains(['?', '!', '=', ',']) {
        Err(RouteError::InvalidSubscription(id.to_owned()))
    } else {
        Ok(())
    }
}

/// The group a subscription id falls back to: the id truncated after its last `.` (ignoring a
/// trailing one), e.g. `game.kr.login` → `game.kr.` → `game.` → none.
pub fn parent(id: &str) -> Option<&str> {
    let trimmed = id.strip_suffix('.').unwrap_or(id);
    trimmed.rfind('.').map(|at| &id[..=at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_key() {
        let target = parse("chat,news?user42=on_reply!on_fail");
        assert_eq!(
            target,
            Ok(Target {
                broadcast: false,
                ids: vec!["chat", "news"],
                argument: Some("user42"),
                fail: Some("on_fail"),
                reply: Some("on_reply"),
            })
        );
    }

    #[test]
    fn prefixes() {
        assert_eq!(parse("*news").map(|t| t.broadcast), Ok(true));
        assert_eq!(
            parse("+news").map(|t| (t.broadcast, t.ids)),
            Ok((false, vec!["news"]))
        );
        assert_eq!(parse("login!r_fail").map(|t| t.fail), Ok(Some("r_fail")));
    }

    #[test]
    fn malformed_keys() {
        for bad in [
            "", "*", "a,", ",a", "a!", "a=", "a!f!g", "a=r=s", "a!f?x", "a=r?x",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn group_parents() {
        assert_eq!(parent("game.kr.login"), Some("game.kr."));
        assert_eq!(parent("game.kr."), Some("game."));
        assert_eq!(parent("game."), None);
        assert_eq!(parent("game"), None);
    }
}
