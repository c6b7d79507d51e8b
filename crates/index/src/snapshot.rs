//! Snapshots of one index file: `<name>.snap`.
//!
//! Layout, all in checksummed frames ([`crate::frame`]): a header frame (`SNAP_MAGIC`, the
//! first log generation *not* contained, the next insertion sequence, the number of IDs),
//! then chunk frames of about 64 KiB, each holding whole entries (ID, value, scores with tier
//! and sequence), then an end frame (`END_MAGIC`, number of IDs). A snapshot is written to
//! `<name>.snap.tmp`, fsynced and renamed over the old one, so a crash leaves either the old
//! or the new snapshot. Any damage (bad checksum, missing end frame, wrong counts) makes the
//! file refuse to load with the offset of the bad frame.

use crate::error::{IndexError, Result};
use crate::frame::{self, Frame, Reader, Writer};
use crate::frozen::FrozenHead;
use crate::ranking::{Entry, Limits, Placed, Ranking, MAX_SEQ};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const SNAP_MAGIC: &[u8] = b"stage-index snapshot 1";
const END_MAGIC: &[u8] = b"stage-index end";
const CHUNK: usize = 64 * 1024;

/// The path of the snapshot of the file at `base` (`dir/name`).
pub(crate) fn snap_path(base: &Path) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".snap");
    PathBuf::from(s)
}

/// A snapshot being written to a temporary file. Entries are framed in memory
/// ([`SnapshotWriter::entry`]) and written out by [`SnapshotWriter::write_out`], so that a
/// caller copying entries under a lock does no I/O there (a write can wait on the disk for
/// hundreds of milliseconds). [`SnapshotWriter::finish`] makes it durable and puts it in place
/// (fsync, rename, fsync of the directory).
pub(crate) struct SnapshotWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    /// The entries not yet in a frame, and the frames not yet written.
    chunk: Writer,
    framed: Vec<u8>,
    /// The IDs the header announces, and the entries added so far.
    ids: u64,
    entries: u64,
    size: u64,
}

impl SnapshotWriter {
    /// Starts the snapshot to be put at `path`: `head` as it was when the snapshot began, and
    /// the first log generation it does not contain.
    pub(crate) fn create(path: &Path, log_gen: u64, head: FrozenHead) -> Result<SnapshotWriter> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp).map_err(|e| IndexError::io(&tmp, e))?;
        let mut snapshot = SnapshotWriter {
            path: path.to_path_buf(),
            tmp,
            file,
            chunk: Writer(Vec::with_capacity(CHUNK + 1024)),
            framed: Vec::new(),
            ids: head.ids,
            entries: 0,
            size: 0,
        };
        let mut header = Writer::default();
        header.0.extend_from_slice(SNAP_MAGIC);
        header.u64(log_gen);
        header.u64(head.next_seq);
        header.u64(head.ids);
        frame::put_frame(&mut snapshot.framed, &header.0);
        snapshot.write_out()?;
        Ok(snapshot)
    }

    /// Adds one entry (in memory).
    pub(crate) fn entry(&mut self, e: &Entry) {
        let chunk = &mut self.chunk;
        chunk.bytes(e.id());
        chunk.opt_bytes(e.value());
        chunk.u32(e.scores().len() as u32);
        for p in e.scores() {
            chunk.u8(p.tier().number());
            chunk.u64(p.seq());
            chunk.score(&p.score);
        }
        self.entries += 1;
        if self.chunk.0.len() >= CHUNK {
            self.frame_chunk();
        }
    }

    /// Writes the frames made so far to the file.
    pub(crate) fn write_out(&mut self) -> Result<()> {
        self.file
            .write_all(&self.framed)
            .map_err(|e| IndexError::io(&self.tmp, e))?;
        self.size += self.framed.len() as u64;
        self.framed.clear();
        Ok(())
    }

    /// Ends the snapshot and puts it in place, durably; returns its size. Refuses (and leaves
    /// the old snapshot) when the entries added are not the IDs the header announced.
    pub(crate) fn finish(mut self) -> Result<u64> {
        if !self.chunk.0.is_empty() {
            self.frame_chunk();
        }
        if self.entries != self.ids {
            return Err(IndexError::Corrupt {
                file: self.tmp,
                offset: self.size,
                reason: format!("{} entries copied for {} IDs", self.entries, self.ids),
            });
        }
        let mut end = Writer::default();
        end.0.extend_from_slice(END_MAGIC);
        end.u64(self.ids);
        frame::put_frame(&mut self.framed, &end.0);
        self.write_out()?;
        self.file
            .sync_all()
            .map_err(|e| IndexError::io(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| IndexError::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| IndexError::io(dir, e))?;
        }
        Ok(self.size)
    }

    fn frame_chunk(&mut self) {
        frame::put_frame(&mut self.framed, &self.chunk.0);
        self.chunk.0.clear();
    }
}

/// A loaded snapshot: the state and the first log generation to replay on top of it.
pub(crate) struct Loaded {
    pub(crate) ranking: Ranking,
    pub(crate) log_gen: u64,
}

/// Reads and checks the snapshot at `path`.
pub(crate) fn load(path: &Path, limits: Limits) -> Result<Loaded> {
    let buf = std::fs::read(path).map_err(|e| IndexError::io(path, e))?;
    let corrupt = |offset: usize, reason: &str| IndexError::Corrupt {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.to_string(),
    };
    let (head, mut at) = match frame::read_frame(&buf, 0) {
        Frame::Ok(p, next) => (p, next),
        Frame::End => return Err(corrupt(0, "empty snapshot")),
        Frame::Bad(why) => return Err(corrupt(0, why)),
    };
    let Some(rest) = head.strip_prefix(SNAP_MAGIC) else {
        return Err(corrupt(0, "not a snapshot header"));
    };
    let mut r = Reader(rest);
    let (Some(log_gen), Some(next_seq), Some(count)) = (r.u64(), r.u64(), r.u64()) else {
        return Err(corrupt(0, "short snapshot header"));
    };
    let mut entries: Vec<Entry> = Vec::with_capacity(count.min(1 << 24) as usize);
    loop {
        let frame_at = at;
        let payload = match frame::read_frame(&buf, at) {
            Frame::Ok(p, next) => {
                at = next;
                p
            }
            Frame::End => return Err(corrupt(frame_at, "snapshot ends without its end frame")),
            Frame::Bad(why) => return Err(corrupt(frame_at, why)),
        };
        if let Some(end) = payload.strip_prefix(END_MAGIC) {
            if Reader(end).u64() != Some(count) || entries.len() as u64 != count {
                return Err(corrupt(frame_at, "entry count mismatch"));
            }
            if at != buf.len() {
                return Err(corrupt(at, "bytes after the end frame"));
            }
            break;
        }
        let mut r = Reader(payload);
        while !r.is_empty() {
            match decode_entry(&mut r, next_seq) {
                Some(e) => entries.push(e),
                None => return Err(corrupt(frame_at, "undecodable entry")),
            }
        }
    }
    Ok(Loaded {
        ranking: Ranking::from_entries(limits, entries, next_seq),
        log_gen,
    })
}

fn decode_entry(r: &mut Reader<'_>, next_seq: u64) -> Option<Entry> {
    let id = r.bytes()?;
    let value = r.opt_bytes()?;
    let n = r.u32()? as usize;
    let mut scores = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        let tier = r.tier()?;
        let seq = r.u64()?;
        let score = r.score()?;
        if seq >= next_seq || seq >= MAX_SEQ {
            return None;
        }
        scores.push(Placed::new(tier, score, seq));
    }
    Some(Entry::new(id, value, scores))
}
