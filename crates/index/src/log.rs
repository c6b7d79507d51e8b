//! The append-only log of one index file: `<name>.<generation>.log`.
//!
//! The file starts with a header frame (`LOG_MAGIC`, generation) followed by one frame per
//! `set`/`del` (see [`crate::frame`]). A record is written with a single `write` of the whole
//! frame before the change is applied and acknowledged. On load, a damaged frame at the end of
//! the newest log with no sound frame after it is a torn write from a crash: it is dropped and
//! the file truncated. Any other damaged frame is corruption and the file refuses to load.

use crate::error::{IndexError, Result};
use crate::frame::{self, Frame, Record};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

const LOG_MAGIC: &[u8] = b"stage-index log 1";

/// The path of generation `gen` of the log of the file at `base` (`dir/name`).
pub(crate) fn log_path(base: &Path, gen: u64) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{gen:010}.log"));
    PathBuf::from(s)
}

/// The generation encoded in a log file name `<stem>.<digits>.log`, if `file_name` is a log
/// of `stem`.
pub(crate) fn log_generation(file_name: &str, stem: &str) -> Option<u64> {
    let rest = file_name.strip_suffix(".log")?;
    let (s, digits) = rest.rsplit_once('.')?;
    if s != stem || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn header(gen: u64) -> Vec<u8> {
    let mut w = frame::Writer::default();
    w.0.extend_from_slice(LOG_MAGIC);
    w.u64(gen);
    let mut out = Vec::new();
    frame::put_frame(&mut out, &w.0);
    out
}

/// What replaying one log found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// Bytes of sound frames (the length the file is cut back to).
    pub(crate) valid_len: u64,
    /// Bytes of a torn tail that were dropped.
    pub(crate) dropped: u64,
    /// Records applied.
    pub(crate) records: u64,
}

/// Reads the log at `path`, calling `apply` for each record in order. `last` says whether
/// this is the newest generation, the only one that may end in a torn write.
pub(crate) fn replay(
    path: &Path,
    gen: u64,
    last: bool,
    mut apply: impl FnMut(Record),
) -> Result<Replayed> {
    let buf = std::fs::read(path).map_err(|e| IndexError::io(path, e))?;
    let corrupt = |offset: usize, reason: String| IndexError::Corrupt {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let mut at = 0usize;
    let mut records = 0u64;
    loop {
        match frame::read_frame(&buf, at) {
            Frame::End => break,
            Frame::Bad(why) => {
                if last && !frame::sound_frame_after(&buf, at) {
                    return Ok(Replayed {
                        valid_len: at as u64,
                        dropped: (buf.len() - at) as u64,
                        records,
                    });
                }
                return Err(corrupt(at, why.to_string()));
            }
            Frame::Ok(payload, next) => {
                if at == 0 {
                    let mut r = frame::Reader(payload);
                    let magic_ok = payload.starts_with(LOG_MAGIC);
                    r.0 = &payload[LOG_MAGIC.len().min(payload.len())..];
                    if !magic_ok || r.u64() != Some(gen) || !r.is_empty() {
                        return Err(corrupt(0, format!("not a header of log generation {gen}")));
                    }
                } else {
                    match frame::decode_record(payload) {
                        Some(rec) => apply(rec),
                        None => return Err(corrupt(at, "undecodable record".into())),
                    }
                    records += 1;
                }
                at = next;
            }
        }
    }
    Ok(Replayed {
        valid_len: buf.len() as u64,
        dropped: 0,
        records,
    })
}

/// The open, newest log of an index file.
#[derive(Debug)]
pub(crate) struct LogWriter {
    path: PathBuf,
    file: File,
    gen: u64,
    len: u64,
    broken: bool,
    pub(crate) dirty: bool,
    pub(crate) last_sync: Option<Instant>,
}

fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        let d = File::open(dir).map_err(|e| IndexError::io(dir, e))?;
        d.sync_all().map_err(|e| IndexError::io(dir, e))?;
    }
    Ok(())
}

impl LogWriter {
    /// Creates (or replaces) generation `gen` at `base` with just its header, synced.
    pub(crate) fn create(base: &Path, gen: u64) -> Result<LogWriter> {
        let path = log_path(base, gen);
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| IndexError::io(&path, e))?;
        let head = header(gen);
        file.write_all(&head)
            .and_then(|_| file.sync_all())
            .map_err(|e| IndexError::io(&path, e))?;
        sync_dir(&path)?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| IndexError::io(&path, e))?;
        Ok(LogWriter {
            path,
            file,
            gen,
            len: head.len() as u64,
            broken: false,
            dirty: false,
            last_sync: None,
        })
    }

    /// Opens generation `gen` for appending after `valid_len` sound bytes, cutting off a torn
    /// tail; a log without a sound header is created anew.
    pub(crate) fn reopen(base: &Path, gen: u64, valid_len: u64) -> Result<LogWriter> {
        if valid_len == 0 {
            return LogWriter::create(base, gen);
        }
        let path = log_path(base, gen);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| IndexError::io(&path, e))?;
        let len = file.metadata().map_err(|e| IndexError::io(&path, e))?.len();
        if len != valid_len {
            file.set_len(valid_len)
                .and_then(|_| file.sync_all())
                .map_err(|e| IndexError::io(&path, e))?;
        }
        Ok(LogWriter {
            path,
            file,
            gen,
            len: valid_len,
            broken: false,
            dirty: false,
            last_sync: None,
        })
    }

    /// The generation being written.
    pub(crate) fn generation(&self) -> u64 {
        self.gen
    }

    /// Bytes in the log.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Writes complete record frames (one `write` for the lot); with `sync` also fsyncs them.
    /// A failed write is cut back off the file so that no half frame stays in the middle of
    /// the log.
    pub(crate) fn append(&mut self, frames: &[u8], sync: bool) -> Result<()> {
        if self.broken {
            return Err(IndexError::io(
                &self.path,
                std::io::Error::other("log unusable after a failed write"),
            ));
        }
        if let Err(e) = self.file.write_all(frames) {
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(IndexError::io(&self.path, e));
        }
        self.len += frames.len() as u64;
        if sync {
            self.file
                .sync_data()
                .map_err(|e| IndexError::io(&self.path, e))?;
            self.dirty = false;
        } else {
            self.dirty = true;
        }
        Ok(())
    }

    /// A second handle on the log file, to fsync it without holding the writer.
    pub(crate) fn sync_handle(&self) -> Result<(File, PathBuf)> {
        let f = self
            .file
            .try_clone()
            .map_err(|e| IndexError::io(&self.path, e))?;
        Ok((f, self.path.clone()))
    }

    /// Fsyncs this generation and switches to a new, empty generation `gen + 1`.
    pub(crate) fn rotate(&mut self, base: &Path) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| IndexError::io(&self.path, e))?;
        *self = LogWriter::create(base, self.gen + 1)?;
        Ok(())
    }
}
