//! [`RecentStrings`]: the short string values that the tables a state receives repeat, kept
//! built in that state.
//!
//! Replies repeat the same values message after message: the IDs of a ranking's top entries are
//! read again and again. Building a Lua string hashes it and looks it up in the state's string
//! table (cold memory: a third of the time of building a top-100 reply went there), and a string
//! dropped since the previous message is allocated again; a table built from a message takes
//! such strings from here instead. (Field names have their own cache, per table built.)

use mlua::ffi;
use mlua::{Lua, RegistryKey};

/// How many strings are kept: a direct-mapped cache, a string's slot is given by its hash.
const SLOTS: usize = 1024;
const _: () = assert!(SLOTS.is_power_of_two());

/// How long a kept string may be: names and IDs, not texts.
pub(crate) const MAX_LEN: usize = 24;

/// The strings most recently built into tables of one Lua state, by slot: the bytes here, the Lua
/// strings in a table of the state's registry (which keeps them alive).
pub(crate) struct RecentStrings {
    table: RegistryKey,
    slots: Box<[Slot]>,
}

/// The last string seen at a slot, and whether the Lua table holds it there.
///
/// A string goes into the Lua table only when it is seen a second time in a row at its slot:
/// strings that do not repeat then cost no table writes.
#[derive(Clone, Copy, Default)]
struct Slot {
    seen: Bytes,
    in_lua: bool,
}

/// A string's bytes, zero-padded, as words; `len` is its length plus one, 0 for none.
#[derive(Clone, Copy, Default, PartialEq)]
struct Bytes {
    words: [u64; MAX_LEN / 8],
    len: u64,
}

impl Bytes {
    fn of(s: &[u8]) -> Bytes {
        let mut words = [0u64; MAX_LEN / 8];
        for (i, chunk) in s.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            words[i] = u64::from_le_bytes(w);
        }
        Bytes {
            words,
            len: s.len() as u64 + 1,
        }
    }

    /// Where this string is kept.
    fn index(&self) -> usize {
        let [a, b, c] = self.words;
        let mixed = (a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ self.len)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (mixed >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

impl RecentStrings {
    /// An empty cache for `lua`.
    pub(crate) fn new(lua: &Lua) -> mlua::Result<RecentStrings> {
        let table = lua.create_table_with_capacity(SLOTS, 0)?;
        Ok(RecentStrings {
            table: lua.create_registry_value(table)?,
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        })
    }

    /// Pushes the Lua table of kept strings (needed by [`RecentStrings::push`]).
    ///
    /// # Safety
    /// `state` is the state this cache was made for, with room for one more value.
    pub(crate) unsafe fn push_table(&self, state: *mut ffi::lua_State) {
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, self.table.id().into());
    }

    /// Pushes the Lua string of `s` (at most [`MAX_LEN`] bytes), the kept one when it is there;
    /// otherwise builds it, and keeps it when it was also the last string seen at its slot.
    ///
    /// # Safety
    /// `table` is the stack index where [`RecentStrings::push_table`] put the table, and the
    /// stack has room for two more values.
    pub(crate) unsafe fn push(&mut self, state: *mut ffi::lua_State, table: i32, s: &[u8]) {
        debug_assert!(s.len() <= MAX_LEN);
        let wanted = Bytes::of(s);
        let at = wanted.index();
        let index = at as ffi::lua_Integer + 1;
        let slot = &mut self.slots[at];
        let again = slot.seen == wanted;
        if again && slot.in_lua {
            ffi::lua_rawgeti(state, table, index);
            return;
        }
        ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
        if again {
            ffi::lua_pushvalue(state, -1);
            ffi::lua_rawseti(state, table, index);
        }
        *slot = Slot {
            seen: wanted,
            in_lua: again,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes `s` through `recent`; returns the string pushed and what the Lua table holds at
    /// the string's slot afterwards.
    fn push(lua: &Lua, recent: &mut RecentStrings, s: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let slot = Bytes::of(s).index() as ffi::lua_Integer + 1;
        // SAFETY: pushes the table, the string and the slot's value, and removes the table.
        let (pushed, kept) = unsafe {
            lua.exec_raw::<(mlua::LuaString, Option<mlua::LuaString>)>((), |state| {
                recent.push_table(state);
                let table = ffi::lua_gettop(state);
                recent.push(state, table, s);
                ffi::lua_rawgeti(state, table, slot);
                ffi::lua_remove(state, table);
            })
        }
        .expect("push");
        (
            pushed.as_bytes().to_vec(),
            kept.map(|k| k.as_bytes().to_vec()),
        )
    }

    #[test]
    fn a_string_is_kept_when_seen_twice_and_then_taken_from_the_table() {
        let lua = Lua::new();
        let mut recent = RecentStrings::new(&lua).expect("cache");
        assert_eq!(
            push(&lua, &mut recent, b"user000000000042"),
            (b"user000000000042".to_vec(), None)
        );
        let kept = Some(b"user000000000042".to_vec());
        assert_eq!(
            push(&lua, &mut recent, b"user000000000042"),
            (b"user000000000042".to_vec(), kept.clone())
        );
        assert_eq!(
            push(&lua, &mut recent, b"user000000000042"),
            (b"user000000000042".to_vec(), kept)
        );
    }

    #[test]
    fn another_string_at_the_same_slot_is_never_answered_with_the_kept_one() {
        let lua = Lua::new();
        let mut recent = RecentStrings::new(&lua).expect("cache");
        let first = b"id0".to_vec();
        let at = Bytes::of(&first).index();
        let other = (1..100_000)
            .map(|n| format!("id{n}").into_bytes())
            .find(|s| Bytes::of(s).index() == at)
            .expect("a string with the same slot");
        push(&lua, &mut recent, &first);
        assert_eq!(push(&lua, &mut recent, &first).1, Some(first.clone()));
        // The other string is built, not taken from the slot; the slot keeps the first string
        // until the other one is seen twice in a row.
        assert_eq!(
            push(&lua, &mut recent, &other),
            (other.clone(), Some(first.clone()))
        );
        assert_eq!(
            push(&lua, &mut recent, &other),
            (other.clone(), Some(other.clone()))
        );
        assert_eq!(push(&lua, &mut recent, &first).0, first);
    }

    #[test]
    fn strings_differing_only_in_length_or_trailing_zero_bytes_are_distinct() {
        let lua = Lua::new();
        let mut recent = RecentStrings::new(&lua).expect("cache");
        for s in [&b"a"[..], b"a\0", b"a\0\0", b"", b"\0", &[b'x'; MAX_LEN]] {
            push(&lua, &mut recent, s);
            push(&lua, &mut recent, s);
        }
        for s in [&b"a"[..], b"a\0", b"a\0\0", b"", b"\0", &[b'x'; MAX_LEN]] {
            assert_eq!(push(&lua, &mut recent, s).0, s);
        }
    }
}
