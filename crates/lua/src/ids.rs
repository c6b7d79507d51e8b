//! The ids the runtime makes for handlers a script registers without a name
//! (`stage.waitfor(fn)`) and for `thread.new` callbacks: letters and digits, so that they are
//! valid message ids.

/// The characters of a made id.
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// How long the ids made for `thread.new` callbacks are.
pub const CALLBACK_ID_LEN: usize = 16;

/// A random id of `len` letters and digits that `taken` does not know.
pub fn fresh_random(len: usize, taken: impl Fn(&str) -> bool) -> String {
    loop {
        let candidate: String = (0..len)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect();
        if !taken(&candidate) {
            return candidate;
        }
    }
}

/// The id of number `n` of a sequence: [`CALLBACK_ID_LEN`] letters and digits (the digits of
/// `n` in base 62), so that consecutive numbers give distinct ids for 2^64 numbers.
pub fn of_sequence(mut n: u64) -> String {
    let mut id = [b'0'; CALLBACK_ID_LEN];
    for c in id.iter_mut().rev() {
        *c = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    id.iter().map(|&c| c as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_ids_are_distinct_letters_and_digits() {
        let ids: Vec<String> = (0..100u64)
            .map(|i| of_sequence((u64::MAX - 50).wrapping_add(i)))
            .collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == CALLBACK_ID_LEN
                    && id.bytes().all(|c| c.is_ascii_alphanumeric()))
        );
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(of_sequence(61), "000000000000000z");
    }

    #[test]
    fn random_ids_skip_taken_ones() {
        // Every one-character id but "z" is taken: only "z" can come back.
        assert_eq!(fresh_random(1, |id| id != "z"), "z");
        let id = fresh_random(16, |_| false);
        assert!(id.len() == 16 && id.bytes().all(|c| c.is_ascii_alphanumeric()));
    }
}
