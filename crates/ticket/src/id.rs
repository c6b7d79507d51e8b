//! [`RequestId`]: the `@hex` name of one ticket request (`_TICKET` in scripts).

use crate::error::TicketError;
use std::fmt;
use std::str::FromStr;

/// The identity of one request, unique for the engine's lifetime (decision 17: from a counter,
/// never reused). Its text form is `@` followed by lowercase hexadecimal digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl RequestId {
    /// Appends the text form to `out` (what `Display` writes, without the formatting machinery).
    pub fn push_to(self, out: &mut String) {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        out.push('@');
        let digits = (u64::BITS - self.0.leading_zeros()).max(1).div_ceil(4);
        for i in (0..digits).rev() {
            out.push(char::from(DIGITS[((self.0 >> (i * 4)) & 0xf) as usize]));
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{:x}", self.0)
    }
}

impl FromStr for RequestId {
    type Err = TicketError;

    /// Parses `@hex` (a `0x` prefix after the `@` is allowed, digits in either case).
    fn from_str(text: &str) -> Result<Self, TicketError> {
        let malformed = || TicketError::MalformedRequestId(text.to_owned());
        let hex = text.strip_prefix('@').ok_or_else(malformed)?;
        let hex = hex
            .strip_prefix("0x")
            .or_else(|| hex.strip_prefix("0X"))
            .unwrap_or(hex);
        if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        u64::from_str_radix(hex, 16)
            .map(RequestId)
            .map_err(|_| malformed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        for n in [1, 0xff, 0x55d0_c3a0_b8e0, u64::MAX] {
            let id = RequestId(n);
            assert_eq!(id.to_string().parse::<RequestId>().ok(), Some(id));
        }
        assert_eq!(RequestId(0x55d0c3a0).to_string(), "@55d0c3a0");
    }

    #[test]
    fn push_to_writes_the_display_form() {
        for n in [0, 1, 0xf, 0x10, 0xff, 0x55d0_c3a0_b8e0, u64::MAX] {
            let mut text = String::from("x");
            RequestId(n).push_to(&mut text);
            assert_eq!(text, format!("x{}", RequestId(n)));
        }
    }

    #[test]
    fn accepts_0x_prefix_and_upper_case() {
        assert_eq!("@0xFF".parse::<RequestId>().ok(), Some(RequestId(255)));
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in ["", "@", "55", "@xyz", "@0x", "@+1", "@11111111111111111"] {
            assert!(bad.parse::<RequestId>().is_err(), "{bad}");
        }
    }
}
