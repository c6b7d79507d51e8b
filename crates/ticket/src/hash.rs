//! Hashing for maps keyed by the engine's own counter-made ids: a multiplicative hash is
//! enough (the keys are not chosen by an adversary) and much cheaper than SipHash.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A Fibonacci-multiplication hasher for integer ids.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(byte));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by counter-made ids.
pub(crate) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
