//! [`Token`]: the opaque string a probe carries and an acceptance answers with.

use crate::error::RouteError;
use std::fmt;

/// Names one candidate of one publication: text form `r<publication hex>+<candidate index>`
/// (`route.md` D7). It is only looked up, never trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token {
    /// The publication being probed.
    pub publication: u64,
    /// The candidate's position among the publication's probes.
    pub candidate: u32,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{:x}+{}", self.publication, self.candidate)
    }
}

/// A probe answer: `token` or `token?cb1,cb2` (only the named callbacks receive the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<'a> {
    /// The token answered.
    pub token: Token,
    /// The callbacks selected, when a `?` filter was given.
    pub filter: Option<Vec<&'a str>>,
}

impl<'a> Answer<'a> {
    /// Parses an answer string.
    pub fn parse(text: &'a str) -> Result<Self, RouteError> {
        let malformed = || RouteError::MalformedToken(text.to_owned());
        let (token, filter) = match text.split_once('?') {
            Some((token, filter)) => (token, Some(filter.split(',').collect::<Vec<_>>())),
            None => (text, None),
        };
        let (publication, candidate) = token
            .strip_prefix('r')
            .and_then(|rest| rest.split_once('+'))
            .ok_or_else(malformed)?;
        let digits = |s: &str, hex: bool| {
            !s.is_empty()
                && s.bytes().all(|b| {
                    if hex {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        if !digits(publication, true) || !digits(candidate, false) {
            return Err(malformed());
        }
        let token = Token {
            publication: u64::from_str_radix(publication, 16).map_err(|_| malformed())?,
            candidate: candidate.parse().map_err(|_| malformed())?,
        };
        Ok(Answer { token, filter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_filter() {
        let token = Token {
            publication: 0xabc,
            candidate: 3,
        };
        assert_eq!(token.to_string(), "rabc+3");
        let answer = Answer::parse("rabc+3?cb,ca");
        assert_eq!(
            answer,
            Ok(Answer {
                token,
                filter: Some(vec!["cb", "ca"])
            })
        );
        assert_eq!(Answer::parse("rabc+3").map(|a| a.filter), Ok(None));
    }

    #[test]
    fn malformed_answers() {
        for bad in [
            "", "r", "r+1", "rab+", "xab+1", "rzz+1", "rab+-1", "rab1", "on_chat",
        ] {
            assert!(Answer::parse(bad).is_err(), "{bad:?}");
        }
    }
}
