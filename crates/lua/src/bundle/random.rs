//! `bundle.random(t [, lo, hi] | t, fn)` / `bundle.random([lo, hi])`: WELL512 over 16 64-bit words,
//! bit-compatible with the reference.
//!
//! The state of a caller-kept generator lives in its table: `t[0]` = position (0..15),
//! `t[1..16]` = the words (as Lua integers, i.e. the u64 bit patterns), optional `t[""]` = a seed
//! (number, delta 1024) or `{seed, delta}` (missing parts: the current time in seconds, 1024),
//! consumed and deleted. A table without state is seeded from the current time in seconds.
//! The stateless forms draw from a generator per OS thread, seeded once from the clock.
//!
//! Draws: float = the output × 16807 (wrapping), low 23 bits − 1 as the mantissa of a float in
//! [1, 2), minus 1; the reference turns the one pattern whose low 23 bits are all zero into NaN,
//! here it gives 0.0. Integer in [lo, hi] = `lo + floor(u × (hi − lo + 1))` with u a float draw
//! (computed in f64, so ranges wider than 2^53 are coarse, as in the reference).

use super::{bad_argument, error, first_result, type_name};
use mlua::{Function, Lua, MultiValue, Table, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The delta used when a seed comes without one.
const DEFAULT_DELTA: u64 = 1024;

/// A WELL512-style generator over 16 64-bit words.
#[derive(Clone, Debug, PartialEq)]
pub struct Well512 {
    words: [u64; 16],
    position: usize,
}

impl Well512 {
    /// Seeds as the reference does: `word[i] = s; s += s + delta`.
    pub fn seeded(seed: u64, delta: u64) -> Well512 {
        let mut words = [0; 16];
        let mut s = seed;
        for w in &mut words {
            *w = s;
            s = s.wrapping_add(s.wrapping_add(delta));
        }
        Well512 { words, position: 0 }
    }

    /// The next raw output word.
    pub fn next_u64(&mut self) -> u64 {
        let w = &mut self.words;
        let p = self.position;
        let a = w[p];
        let c = w[(p + 13) & 15];
        let b = a ^ c ^ (a << 16) ^ (c << 15);
        let mut c = w[(p + 9) & 15];
        c ^= c >> 11;
        w[p] = b ^ c;
        let a = w[p];
        let d = a ^ ((a << 5) & 0xDA44_2D24);
        let p = (p + 15) & 15;
        let a = w[p];
        w[p] = a ^ b ^ d ^ (a << 2) ^ (b << 18) ^ (c << 28);
        self.position = p;
        w[p]
    }

    /// A float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        let v = self.next_u64().wrapping_mul(16807);
        let mantissa = ((v & 0x7F_FFFF) as u32).saturating_sub(1);
        f64::from(f32::from_bits(mantissa | 0x3F80_0000) - 1.0)
    }

    /// An integer in [lo, hi] (`lo <= hi`).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let u = self.next_f64();
        let span = hi as f64 - lo as f64 + 1.0;
        let drawn = i128::from(lo) + (u * span).floor() as i128;
        drawn.clamp(i128::from(lo), i128::from(hi)) as i64
    }
}

thread_local! {
    static THREAD_GENERATOR: Rc<RefCell<Well512>> = Rc::new(RefCell::new(clock_seeded()));
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A generator for one thread: clock nanoseconds mixed with a per-thread address.
fn clock_seeded() -> Well512 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let salt = (&local as *const u8 as u64).rotate_left(32);
    Well512::seeded(nanos ^ salt, DEFAULT_DELTA)
}

/// Creates the Lua function `bundle.random`, bound to this thread's generator.
pub fn create(lua: &Lua) -> mlua::Result<Function> {
    let generator = THREAD_GENERATOR.with(Rc::clone);
    lua.create_function(move |lua, args: MultiValue| random(lua, &generator, args))
}

/// One call of `bundle.random` (or of the `r` handed to `fn`): `generator` serves the forms
/// without a state table.
fn random(lua: &Lua, generator: &Rc<RefCell<Well512>>, args: MultiValue) -> mlua::Result<Value> {
    let args: Vec<Value> = args.into_iter().collect();
    match args.first() {
        None => Ok(Value::Number(generator.borrow_mut().next_f64())),
        Some(Value::Table(t)) => {
            let own = Rc::new(RefCell::new(load(t)?));
            let result = draw(lua, &own, &args[1..], 2);
            save(t, &own.borrow())?;
            result
        }
        Some(_) => draw(lua, generator, &args, 1),
    }
}

/// The integer or `fn` forms; `first` is the argument position of `rest[0]` for messages.
fn draw(
    lua: &Lua,
    generator: &Rc<RefCell<Well512>>,
    rest: &[Value],
    first: usize,
) -> mlua::Result<Value> {
    if let Some(Value::Function(f)) = rest.first() {
        let bound = Rc::clone(generator);
        let r = lua.create_function(move |lua, args: MultiValue| random(lua, &bound, args))?;
        return first_result(f, MultiValue::from_iter([Value::Function(r)]));
    }
    let (lo, hi) = match rest {
        [] => (1, i64::MAX),
        [n] => (1, integer(n, first)?),
        [lo, hi, ..] => (integer(lo, first)?, integer(hi, first + 1)?),
    };
    if lo > hi {
        return Err(error("random", "interval is empty"));
    }
    Ok(Value::Integer(generator.borrow_mut().range(lo, hi)))
}

/// An integer argument (floats with an exact integer value accepted).
fn integer(v: &Value, position: usize) -> mlua::Result<i64> {
    match *v {
        Value::Integer(i) => Ok(i),
        Value::Number(n) if n.fract() == 0.0 && n >= -(2f64.powi(63)) && n < 2f64.powi(63) => {
            Ok(n as i64)
        }
        Value::Number(_) => Err(error(
            "random",
            format!("bad argument #{position} (number has no integer representation)"),
        )),
        ref other => Err(bad_argument("random", position, "integer", other)),
    }
}

/// A seed number (floats truncated toward zero).
fn seed_number(v: &Value, what: &str) -> mlua::Result<u64> {
    match *v {
        Value::Integer(i) => Ok(i as u64),
        Value::Number(n) => Ok(n as i64 as u64),
        ref other => Err(error(
            "random",
            format!("{what} must be a number, got {}", type_name(other)),
        )),
    }
}

/// The generator a state table describes (see the module docs); `t[""]` is consumed.
fn load(t: &Table) -> mlua::Result<Well512> {
    let seed: Value = t.raw_get("")?;
    if !seed.is_nil() {
        let generator = match &seed {
            Value::Table(s) => {
                let seed = match s.raw_get::<Value>(1)? {
                    Value::Nil => now_seconds(),
                    v => seed_number(&v, "the seed")?,
                };
                let delta = match s.raw_get::<Value>(2)? {
                    Value::Nil => DEFAULT_DELTA,
                    v => seed_number(&v, "the delta")?,
                };
                Well512::seeded(seed, delta)
            }
            v => Well512::seeded(seed_number(v, "t[\"\"]")?, DEFAULT_DELTA),
        };
        t.raw_set("", Value::Nil)?;
        return Ok(generator);
    }
    let position = match t.raw_get::<Value>(0)? {
        Value::Nil => return Ok(Well512::seeded(now_seconds(), DEFAULT_DELTA)),
        Value::Integer(p @ 0..=15) => p as usize,
        other => {
            return Err(error(
                "random",
                format!(
                    "the state table is damaged: t[0] = {} is not a position 0..15",
                    other.to_string()?
                ),
            ))
        }
    };
    let mut words = [0; 16];
    for (i, w) in words.iter_mut().enumerate() {
        *w = match t.raw_get::<Value>(i + 1)? {
            Value::Integer(v) => v as u64,
            other => {
                return Err(error(
                    "random",
                    format!(
                        "the state table is damaged: t[{}] is {}, not an integer",
                        i + 1,
                        type_name(&other)
                    ),
                ))
            }
        };
    }
    Ok(Well512 { words, position })
}

/// Writes the generator back into its table.
fn save(t: &Table, generator: &Well512) -> mlua::Result<()> {
    for (i, w) in generator.words.iter().enumerate() {
        t.raw_set(i + 1, *w as i64)?;
    }
    t.raw_set(0, generator.position as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::testing::{error_of, lua, printed};

    #[test]
    fn spec_example() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local R = { [""] = 42 }
            local a = bundle.random(R, 1, 1000)
            local R2 = { [""] = 42 }
            print(a == bundle.random(R2, 1, 1000), R[0] ~= nil)
            "#,
        );
        assert_eq!(out, "true\ttrue\n");
    }

    /// The step and float formulas written out once more, straight from the spec text.
    fn reference_draws(seed: u64, n: usize) -> (Vec<u64>, Vec<f32>) {
        let mut w = [0u64; 16];
        let mut s = seed;
        for x in &mut w {
            *x = s;
            s = s.wrapping_add(s.wrapping_add(1024));
        }
        let mut p = 0usize;
        let (mut raw, mut floats) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let a = w[p];
            let c = w[(p + 13) & 15];
            let b = a ^ c ^ (a << 16) ^ (c << 15);
            let mut c = w[(p + 9) & 15];
            c ^= c >> 11;
            w[p] = b ^ c;
            let a = w[p];
            let d = a ^ ((a << 5) & 0xDA442D24);
            p = (p + 15) & 15;
            let a = w[p];
            w[p] = a ^ b ^ d ^ (a << 2) ^ (b << 18) ^ (c << 28);
            raw.push(w[p]);
            let v = w[p].wrapping_mul(16807);
            let m = ((v & 0x7FFFFF) as u32).wrapping_sub(1);
            floats.push(f32::from_bits(m | 0x3F800000) - 1.0);
        }
        (raw, floats)
    }

    #[test]
    fn draws_follow_the_spec_formulas() {
        let (raw, floats) = reference_draws(42, 50);
        let mut g = Well512::seeded(42, 1024);
        for (r, f) in raw.iter().zip(&floats) {
            let mut copy = g.clone();
            assert_eq!(copy.next_u64(), *r);
            assert_eq!(g.next_f64(), f64::from(*f));
        }
        let lua = lua();
        let draws: Vec<i64> = lua
            .load(r#"local R = { [""] = 42 } local out = {} for i = 1, 50 do out[i] = bundle.random(R, 1, 1000) end return out"#)
            .eval::<Table>()
            .unwrap()
            .sequence_values()
            .map(|v| v.unwrap())
            .collect();
        let expected: Vec<i64> = floats
            .iter()
            .map(|u| 1 + (f64::from(*u) * 1000.0).floor() as i64)
            .collect();
        assert_eq!(draws, expected);
        assert!(draws.iter().all(|d| (1..=1000).contains(d)));
    }

    #[test]
    fn state_lives_in_the_table() {
        let lua = lua();
        let t: Table = lua
            .load(r#"local R = { [""] = { 7, 3 } } bundle.random(R) return R"#)
            .eval()
            .unwrap();
        let mut g = Well512::seeded(7, 3);
        g.next_u64();
        assert_eq!(t.raw_get::<i64>(0).unwrap(), g.position as i64);
        for i in 0..16 {
            assert_eq!(t.raw_get::<i64>(i + 1).unwrap() as u64, g.words[i]);
        }
        assert!(
            t.raw_get::<Value>("").unwrap().is_nil(),
            "the seed is consumed"
        );
        // continuing from the table equals continuing the generator
        lua.globals().set("R", t).unwrap();
        let next: f64 = lua
            .load("return bundle.random(R, 1, 2^53) / 2^53")
            .eval()
            .unwrap();
        let mut copy = g.clone();
        let expected = copy.range(1, 1 << 53) as f64 / 2f64.powi(53);
        assert_eq!(next, expected);
    }

    #[test]
    fn forms_and_ranges() {
        let lua = lua();
        let out = printed(
            &lua,
            r#"
            local f = bundle.random()
            print(math.type(f), f >= 0 and f < 1)
            local ok = true
            for i = 1, 200 do
              local d = bundle.random(6); ok = ok and d >= 1 and d <= 6
              local e = bundle.random(-3, 3); ok = ok and e >= -3 and e <= 3
              local g = bundle.random({}, 10, 10); ok = ok and g == 10
              local big = bundle.random(math.mininteger, math.maxinteger); ok = ok and math.type(big) == "integer"
              local x = bundle.random({}); ok = ok and x >= 1
            end
            print(ok, bundle.random(2.0, 2))
            local A, B = { [""] = 5 }, { [""] = 5 }
            local sum = bundle.random(A, function (r) return r(1, 6) + r(1, 6), "ignored" end)
            print(sum == bundle.random(B, 1, 6) + bundle.random(B, 1, 6), A[1] == B[1], A[0] == B[0])
            local C = { [""] = 5 }
            print(bundle.random(C, function (r) return math.type(r()) end))
            print(bundle.random(function (r) return math.type(r(3)) end))
            "#,
        );
        assert_eq!(
            out,
            "float\ttrue\ntrue\t2\ntrue\ttrue\ttrue\nfloat\ninteger\n"
        );
    }

    #[test]
    fn errors() {
        let lua = lua();
        for (code, needle) in [
            ("bundle.random({}, 5, 1)", "interval is empty"),
            ("bundle.random(0)", "interval is empty"),
            (
                "bundle.random(true)",
                "bad argument #1 (integer expected, got boolean)",
            ),
            (
                "bundle.random({}, 'x')",
                "bad argument #2 (integer expected, got string)",
            ),
            ("bundle.random({}, 1, {})", "bad argument #3"),
            ("bundle.random(1.5)", "no integer representation"),
            ("bundle.random({ [''] = 'x' })", "must be a number"),
            ("bundle.random({ [0] = 99 })", "damaged"),
            ("bundle.random({ [0] = 1, 2, 3 })", "damaged: t[3]"),
            (
                "bundle.random({}, function (r) error('inside') end)",
                "inside",
            ),
        ] {
            let e = error_of(&lua, code);
            assert!(e.contains(needle), "{code}: {e}");
        }
    }
}
