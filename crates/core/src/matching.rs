//! Which handler names a message id tries, in order (`messaging.md` §4).

/// The catch-all handler name.
pub const CATCH_ALL: &str = "@";

/// Calls `found` with each candidate handler name for message id `msg`, most specific first,
/// ending with the catch-all `@`, until it returns `Some`.
pub fn find<T>(msg: &str, mut found: impl FnMut(&str) -> Option<T>) -> Option<T> {
    let base = msg.split_once('=').map_or(msg, |(b, _)| b);
    // The empty name is the idle function's slot, never a message handler.
    if !base.is_empty() {
        if let Some(hit) = found(base) {
            return Some(hit);
        }
    }
    let bytes = base.as_bytes();
    let first_colon = bytes.iter().position(|&c| c == b':');
    let first_query = bytes.iter().position(|&c| c == b'?');
    // The scan stops at the sender-group prefix unless a `?` comes before the first `:`.
    let floor = match (first_colon, first_query) {
        (Some(c), Some(q)) if q < c => 0,
        (Some(c), _) => c,
        (None, _) => 0,
    };
    let mut end = bytes.len();
    while end > floor {
        end -= 1;
        if matches!(bytes[end], b'.' | b':' | b'?') && end + 1 < bytes.len() {
            if let Some(hit) = found(&base[..=end]) {
                return Some(hit);
            }
        }
    }
    found(CATCH_ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tried(msg: &str) -> Vec<String> {
        let mut names = Vec::new();
        find::<()>(msg, |n| {
            names.push(n.to_string());
            None
        });
        names
    }

    #[test]
    fn spec_examples() {
        assert_eq!(
            tried("stage:group.msg.callback"),
            [
                "stage:group.msg.callback",
                "stage:group.msg.",
                "stage:group.",
                "stage:",
                "@"
            ]
        );
        assert_eq!(
            tried("order.created=done"),
            ["order.created", "order.", "@"]
        );
        assert_eq!(tried("cmd?x"), ["cmd?x", "cmd?", "@"]);
        assert_eq!(tried("a.b:c.d"), ["a.b:c.d", "a.b:c.", "a.b:", "@"]);
        assert_eq!(tried("plain"), ["plain", "@"]);
        assert_eq!(tried("a:b.c.d"), ["a:b.c.d", "a:b.c.", "a:b.", "a:", "@"]);
    }

    #[test]
    fn a_query_before_the_first_colon_scans_to_the_start() {
        assert_eq!(tried("x.y?q:z"), ["x.y?q:z", "x.y?q:", "x.y?", "x.", "@"]);
    }

    #[test]
    fn trailing_separator_is_tried_once() {
        assert_eq!(tried("order."), ["order.", "@"]);
    }

    #[test]
    fn the_empty_name_is_never_tried() {
        assert_eq!(tried(""), ["@"]);
        assert_eq!(tried("=reply"), ["@"]);
    }

    #[test]
    fn first_match_wins() {
        let hit = find("order.created", |n| {
            if n == "order." {
                Some(n.to_string())
            } else {
                None
            }
        });
        assert_eq!(hit.as_deref(), Some("order."));
    }
}
