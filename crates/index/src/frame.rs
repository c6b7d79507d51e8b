//! The byte layer shared by the log and the snapshot: checksummed frames and the encoding
//! of the values inside them.
//!
//! A frame is `len: u32 LE | crc: u32 LE | payload (len bytes)` where `crc` is the CRC-32 of
//! the four length bytes followed by the payload, so a damaged length is caught as well.
//! Inside payloads: integers are little-endian, byte strings are `u32 length | bytes`.

use crate::ranking::Update;
use crate::score::{Score, Tier, TierSel};

/// Bytes of a frame header.
pub(crate) const HEADER: usize = 8;
/// Largest payload a frame may carry; anything bigger is damage.
pub(crate) const MAX_PAYLOAD: usize = 1 << 26;

/// Appends one frame holding `payload` to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

/// What reading a frame at some offset found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// A sound frame: its payload and the offset just after it.
    Ok(&'a [u8], usize),
    /// No bytes left.
    End,
    /// A frame that is cut short or fails its checksum.
    Bad(&'static str),
}

/// Reads the frame starting at `at` in `buf`.
pub(crate) fn read_frame(buf: &[u8], at: usize) -> Frame<'_> {
    let rest = &buf[at.min(buf.len())..];
    if rest.is_empty() {
        return Frame::End;
    }
    if rest.len() < HEADER {
        return Frame::Bad("frame header cut short");
    }
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Bad("impossible frame length");
    }
    if rest.len() < HEADER + len {
        return Frame::Bad("frame cut short");
    }
    let payload = &rest[HEADER..HEADER + len];
    let mut h = crc32fast::Hasher::new();
    h.update(&rest[0..4]);
    h.update(payload);
    if h.finalize() != crc {
        return Frame::Bad("checksum mismatch");
    }
    Frame::Ok(payload, at + HEADER + len)
}

/// Whether any sound frame starts after offset `from` (used to tell a torn tail, which has
/// none, from damage in the middle, which has sound frames after it).
pub(crate) fn sound_frame_after(buf: &[u8], from: usize) -> bool {
    (from + 1..buf.len()).any(|at| matches!(read_frame(buf, at), Frame::Ok(..)))
}

/// Builds a payload.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub(crate) fn score(&mut self, s: &Score) {
        match s {
            Score::Int(i) => {
                self.u8(0);
                self.u64(*i as u64);
            }
            Score::Str(b) => {
                self.u8(1);
                self.bytes(b);
            }
        }
    }
    pub(crate) fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            Some(b) => {
                self.u8(1);
                self.bytes(b);
            }
            None => self.u8(0),
        }
    }
}

/// Reads a payload; every method fails with `None` when the payload is too short or holds
/// an impossible value.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
    pub(crate) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn score(&mut self) -> Option<Score> {
        match self.u8()? {
            0 => Some(Score::Int(self.u64()? as i64)),
            1 => Some(Score::Str(self.bytes()?.into())),
            _ => None,
        }
    }
    pub(crate) fn opt_bytes(&mut self) -> Option<Option<&'a [u8]>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.bytes()?)),
            _ => None,
        }
    }
    pub(crate) fn tier(&mut self) -> Option<Tier> {
        Tier::new(i64::from(self.u8()?)).ok()
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One change recorded in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// A checked `set`.
    Set { id: Vec<u8>, update: Update },
    /// A `del`.
    Del { id: Vec<u8>, sel: TierSel },
}

const OP_SET: u8 = 1;
const OP_DEL: u8 = 2;

/// Encodes a `set` record's payload.
pub(crate) fn encode_set(id: &[u8], update: &Update) -> Vec<u8> {
    // Sized up front (scores are at most a tag, a length and 8 bytes or the string).
    let scores: usize = (update.scores.iter())
        .map(|(_, list)| 5 + list.iter().map(|s| 13 + score_len(s)).sum::<usize>())
        .sum();
    let value = update.value.as_ref().map_or(0, Vec::len);
    let mut w = Writer(Vec::with_capacity(16 + id.len() + value + scores));
    w.u8(OP_SET);
    w.bytes(id);
    w.opt_bytes(update.value.as_deref());
    w.u8(update.scores.len() as u8);
    for (tier, scores) in &update.scores {
        w.u8(tier.number());
        w.u32(scores.len() as u32);
        for s in scores {
            w.score(s);
        }
    }
    w.0
}

fn score_len(s: &Score) -> usize {
    match s {
        Score::Int(_) => 0,
        Score::Str(b) => b.len(),
    }
}

/// Encodes a `del` record's payload.
pub(crate) fn encode_del(id: &[u8], sel: TierSel) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(OP_DEL);
    w.bytes(id);
    w.u8(match sel {
        TierSel::All => 0,
        TierSel::One(t) => t.number(),
    });
    w.0
}

/// Decodes a log record's payload.
pub(crate) fn decode_record(payload: &[u8]) -> Option<Record> {
    let mut r = Reader(payload);
    let rec = match r.u8()? {
        OP_SET => {
            let id = r.bytes()?.to_vec();
            let value = r.opt_bytes()?.map(<[u8]>::to_vec);
            let tiers = r.u8()?;
            let mut scores = Vec::with_capacity(usize::from(tiers));
            for _ in 0..tiers {
                let tier = r.tier()?;
                let n = r.u32()? as usize;
                let mut list = Vec::with_capacity(n.min(64));
                for _ in 0..n {
                    list.push(r.score()?);
                }
                scores.push((tier, list));
            }
            Record::Set {
                id,
                update: Update { value, scores },
            }
        }
        OP_DEL => {
            let id = r.bytes()?.to_vec();
            let sel = match r.u8()? {
                0 => TierSel::All,
                n => TierSel::One(Tier::new(i64::from(n)).ok()?),
            };
            Record::Del { id, sel }
        }
        _ => return None,
    };
    r.is_empty().then_some(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_seen() {
        let t2 = Tier::new(2).expect("tier 2");
        let update = Update {
            value: Some(b"v".to_vec()),
            scores: vec![(t2, vec![Score::Int(-5), Score::str("x")])],
        };
        let set = encode_set(b"id", &update);
        assert_eq!(
            decode_record(&set),
            Some(Record::Set {
                id: b"id".to_vec(),
                update
            })
        );
        let del = encode_del(b"id", TierSel::All);
        assert_eq!(
            decode_record(&del),
            Some(Record::Del {
                id: b"id".to_vec(),
                sel: TierSel::All
            })
        );
        let mut buf = Vec::new();
        put_frame(&mut buf, &set);
        put_frame(&mut buf, &del);
        let Frame::Ok(p, next) = read_frame(&buf, 0) else {
            panic!("first frame")
        };
        assert_eq!(p, &set[..]);
        assert!(matches!(read_frame(&buf, next), Frame::Ok(_, end) if end == buf.len()));
        assert_eq!(read_frame(&buf, buf.len()), Frame::End);
        let mut bad = buf.clone();
        bad[10] ^= 1;
        assert!(matches!(read_frame(&bad, 0), Frame::Bad(_)));
        assert!(sound_frame_after(&bad, 0));
        assert!(!sound_frame_after(&buf[..buf.len() - 1], next));
    }
}
