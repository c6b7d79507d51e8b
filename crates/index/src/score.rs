//! Scores, tiers and the order of entries inside a tier.

use crate::error::{IndexError, Result};
use std::cmp::Ordering;

/// A score: a 64-bit integer or a byte string. Integral floats are turned into integers by
/// the caller ([`Score::from_f64`]).
///
/// The natural order ([`Ord`]) is "smaller first": every string below every integer, integers
/// by value, strings byte-wise. Ranks run the other way (the biggest score has rank 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Score {
    /// An integer score.
    Int(i64),
    /// A string score, compared byte-wise.
    Str(Box<[u8]>),
}

impl Score {
    /// A score from a float: integral values that fit in 64 bits become [`Score::Int`];
    /// anything else is [`IndexError::InvalidScore`].
    pub fn from_f64(f: f64) -> Result<Score> {
        if f.is_finite() && f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63) {
            Ok(Score::Int(f as i64))
        } else {
            Err(IndexError::InvalidScore(format!("non-integral number {f}")))
        }
    }

    /// A string score.
    pub fn str(s: impl AsRef<[u8]>) -> Score {
        Score::Str(s.as_ref().into())
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Score) -> Ordering {
        match (self, other) {
            (Score::Int(a), Score::Int(b)) => a.cmp(b),
            (Score::Str(a), Score::Str(b)) => a.cmp(b),
            (Score::Str(_), Score::Int(_)) => Ordering::Less,
            (Score::Int(_), Score::Str(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Score) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// One of the four tiers of an index file, numbered 1–4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tier(u8);

impl Tier {
    /// The number of tiers per file.
    pub const COUNT: usize = 4;

    /// The tier numbered `n` (1–4), or [`IndexError::NoSuchTier`].
    pub fn new(n: i64) -> Result<Tier> {
        if (1..=Tier::COUNT as i64).contains(&n) {
            Ok(Tier(n as u8))
        } else {
            Err(IndexError::NoSuchTier(n.to_string()))
        }
    }

    /// The tier's number (1–4).
    pub fn number(self) -> u8 {
        self.0
    }

    /// The tier's position in per-tier arrays (0–3).
    pub(crate) fn slot(self) -> usize {
        usize::from(self.0 - 1)
    }

    /// The tier at position `slot` of per-tier arrays (taken modulo 4).
    pub(crate) fn from_slot(slot: usize) -> Tier {
        Tier((slot % Tier::COUNT) as u8 + 1)
    }

    /// All four tiers in order.
    pub fn all() -> impl Iterator<Item = Tier> {
        (1..=Tier::COUNT as u8).map(Tier)
    }
}

/// A tier selection of `get`, `del` and `total`: one tier or the whole file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierSel {
    /// Every tier (the path `file/` or `file/0`).
    All,
    /// One tier.
    One(Tier),
}

/// The position of one score inside a tier: ranks follow `SortKey`'s order, smallest first.
///
/// Bigger scores come first; among equal scores the newest (highest insertion sequence)
/// comes first. Sequences are unique per file, so no two entries of a tier compare equal.
/// Tiers keep integer scores as [`IntKey`]s and only string scores as `SortKey`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub(crate) score: Score,
    pub(crate) seq: u64,
}

impl SortKey {
    /// The key that sorts before every entry with `score` and after every bigger score:
    /// its position is the number of entries with a bigger score.
    pub(crate) fn head_of(score: &Score) -> SortKey {
        SortKey {
            score: score.clone(),
            seq: u64::MAX,
        }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &SortKey) -> Ordering {
        other
            .score
            .cmp(&self.score)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &SortKey) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The position of one integer score inside a tier, as a [`SortKey`] would order it, packed
/// into two words whose plain order is rank order: the score (biased to unsigned, flipped so
/// that bigger comes first), then the flipped insertion sequence (newest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct IntKey {
    score: u64,
    seq: u64,
}

impl IntKey {
    /// The key of `score` inserted with sequence `seq`.
    pub(crate) fn new(score: i64, seq: u64) -> IntKey {
        IntKey {
            score: !((score as u64) ^ (1 << 63)),
            seq: !seq,
        }
    }

    /// The key that sorts before every entry with `score` and after every bigger score.
    pub(crate) fn head_of(score: i64) -> IntKey {
        IntKey::new(score, u64::MAX)
    }

    /// The insertion sequence.
    pub(crate) fn seq(&self) -> u64 {
        !self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_rank_above_strings_and_newer_ties_first() {
        let k = |s: Score, seq| SortKey { score: s, seq };
        assert!(k(Score::Int(5), 1) < k(Score::Int(4), 9));
        assert!(k(Score::Int(i64::MIN), 1) < k(Score::str("z"), 2));
        assert!(k(Score::str("b"), 1) < k(Score::str("a"), 2));
        assert!(k(Score::Int(5), 2) < k(Score::Int(5), 1));
        assert!(SortKey::head_of(&Score::Int(5)) < k(Score::Int(5), u64::MAX - 1));
    }

    #[test]
    fn int_keys_order_like_sort_keys() {
        let scores = [i64::MIN, -5, -1, 0, 1, 5, i64::MAX];
        let mut pairs = Vec::new();
        for (i, &a) in scores.iter().enumerate() {
            for (j, &b) in scores.iter().enumerate() {
                for (sa, sb) in [(1u64, 2u64), (2, 1), (7, 7)] {
                    let (ka, kb) = (IntKey::new(a, sa + i as u64), IntKey::new(b, sb + j as u64));
                    let (sa, sb) = (
                        SortKey {
                            score: Score::Int(a),
                            seq: sa + i as u64,
                        },
                        SortKey {
                            score: Score::Int(b),
                            seq: sb + j as u64,
                        },
                    );
                    pairs.push((ka.cmp(&kb), sa.cmp(&sb)));
                }
            }
            assert!(IntKey::head_of(a) < IntKey::new(a, 1 << 61));
            assert_eq!(IntKey::new(a, 42).seq(), 42);
        }
        for (got, want) in pairs {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn floats_must_be_integral() {
        assert_eq!(Score::from_f64(50.0).ok(), Some(Score::Int(50)));
        assert!(Score::from_f64(0.5).is_err());
        assert!(Score::from_f64(f64::NAN).is_err());
        assert!(Score::from_f64(1e300).is_err());
        assert!(Tier::new(0).is_err() && Tier::new(5).is_err() && Tier::new(4).is_ok());
    }
}
