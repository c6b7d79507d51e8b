//! Millisecond arguments as scripts send them: integers, or floats with an integral value.

use crate::error::TicketError;

/// The integer a Lua number stands for when used as milliseconds (a renewal, a limit or a
/// close delay): integral floats such as `3000.0` are accepted (ticket.md R7), anything else
/// (`2.5`, NaN, out of the `i64` range) is refused.
pub fn integral(number: f64) -> Result<i64, TicketError> {
    // 2^63 as f64: the first value past the i64 range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if number.fract() == 0.0 && (-LIMIT..LIMIT).contains(&number) {
        Ok(number as i64)
    } else {
        Err(TicketError::NotInteger(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_are_accepted() {
        assert_eq!(integral(3000.0), Ok(3000));
        assert_eq!(integral(-5.0), Ok(-5));
        assert_eq!(integral(3e3), Ok(3000));
    }

    #[test]
    fn other_numbers_are_refused() {
        for bad in [2.5, f64::NAN, f64::INFINITY, 1e19, -1e19] {
            assert!(integral(bad).is_err(), "{bad}");
        }
    }
}
