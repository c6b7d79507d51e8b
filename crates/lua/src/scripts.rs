//! Finding scripts by name and keeping their source fresh (`runtime.md` §8).
//!
//! A name `FILE[+FIELD]` becomes the relative path `FILE` with `.` and `:` turned into `/` and
//! `.lua` appended. Each `%package` entry is tried in order; the first that holds the file *and
//! compiles* wins. The process-wide cache keeps source text, not results: every load runs the
//! chunk again. Primary copies (position 0) are re-checked at most every `%reflush` ms (0 = never,
//! negative = every call) by size and modification time; fail-over copies (position > 0) are
//! re-resolved from the first entry at most once a second, so a repaired primary copy takes over.
//! Zip archives in `%package` are not supported: such entries are skipped with a warning.

use parking_lot::Mutex;
use stage_config::{LuaSettings, PackageEntry};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How often a fail-over copy is re-resolved.
const FAILOVER_RECHECK: Duration = Duration::from_secs(1);

/// Where scripts are looked for and how often primary copies are re-checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPath {
    pub entries: Vec<PackageEntry>,
    pub reflush_ms: i64,
}

impl From<&LuaSettings> for SearchPath {
    fn from(settings: &LuaSettings) -> SearchPath {
        SearchPath {
            entries: settings.package.clone(),
            reflush_ms: settings.reflush_ms,
        }
    }
}

/// A script's text and where it was found.
#[derive(Clone, Debug)]
pub struct Script {
    pub source: Arc<[u8]>,
    /// The path relative to the base directory, as shown in messages (`package/start.lua`).
    pub shown: String,
    pub position: u32,
    /// Modification time in seconds since the epoch.
    pub mtime_secs: u64,
}

impl Script {
    /// The Lua chunk name: `@<relative path>`.
    pub fn chunk_name(&self) -> String {
        format!("@{}", self.shown)
    }
}

#[derive(Clone)]
struct Cached {
    script: Script,
    stamp: Stamp,
    checked: Instant,
}

/// What identifies one version of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    size: u64,
    modified: SystemTime,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        meta.is_file().then(|| Stamp {
            size: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }
}

/// The process-wide cache of script sources.
pub struct ScriptCache {
    base_dir: PathBuf,
    entries: Mutex<HashMap<String, Cached>>,
}

/// Splits `FILE[+FIELD]` into the relative path of FILE and the optional field.
pub fn split_name(name: &str) -> (String, Option<&str>) {
    let (file, field) = match name.split_once('+') {
        Some((f, field)) => (f, Some(field)),
        None => (name, None),
    };
    (format!("{}.lua", file.replace(['.', ':'], "/")), field)
}

impl ScriptCache {
    /// An empty cache resolving relative directories against `base_dir`.
    pub fn new(base_dir: PathBuf) -> ScriptCache {
        ScriptCache {
            base_dir,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Finds the script at relative path `file` and compiles it with `compile`; returns the
    /// script and the compiled result, or `None` when no search entry holds a compilable copy.
    pub fn load<T>(
        &self,
        file: &str,
        search: &SearchPath,
        mut compile: impl FnMut(&Script) -> Result<T, String>,
    ) -> Option<(Script, T)> {
        if let Some(script) = self.cached(file, search) {
            match compile(&script) {
                Ok(done) => return Some((script, done)),
                Err(e) => {
                    tracing::warn!(target: "lua", "{}: {e}", script.shown);
                    self.entries.lock().remove(file);
                }
            }
        }
        for entry in &search.entries {
            let Some((shown, path)) = self.candidate(entry, file) else {
                continue;
            };
            let Some(stamp) = Stamp::of(&path) else {
                continue;
            };
            let Ok(source) = std::fs::read(&path) else {
                continue;
            };
            let script = Script {
                source: source.into(),
                shown,
                position: entry.position,
                mtime_secs: mtime_secs(stamp.modified),
            };
            match compile(&script) {
                Ok(done) => {
                    let cached = Cached {
                        script: script.clone(),
                        stamp,
                        checked: Instant::now(),
                    };
                    self.entries.lock().insert(file.to_string(), cached);
                    return Some((script, done));
                }
                Err(e) => tracing::warn!(target: "lua", "{}: {e}", script.shown),
            }
        }
        None
    }

    /// Every existing candidate file of `file` with its stamp: when this changes, a script that
    /// failed to load may load now.
    pub fn fingerprint(&self, file: &str, search: &SearchPath) -> Vec<(PathBuf, Stamp)> {
        search
            .entries
            .iter()
            .filter_map(|e| self.candidate(e, file))
            .filter_map(|(_, path)| Stamp::of(&path).map(|s| (path, s)))
            .collect()
    }

    /// The cached copy of `file` if it is still valid, refreshed from disk when it changed.
    fn cached(&self, file: &str, search: &SearchPath) -> Option<Script> {
        let mut entries = self.entries.lock();
        let cached = entries.get_mut(file)?;
        let due = match cached.script.position {
            0 => match search.reflush_ms {
                0 => false,
                ms if ms < 0 => true,
                ms => cached.checked.elapsed() >= Duration::from_millis(ms as u64),
            },
            _ => {
                if cached.checked.elapsed() >= FAILOVER_RECHECK {
                    entries.remove(file);
                    return None;
                }
                false
            }
        };
        if !due {
            return Some(cached.script.clone());
        }
        let path = self.base_dir.join(&cached.script.shown);
        match Stamp::of(&path) {
            Some(stamp) if stamp == cached.stamp => {
                cached.checked = Instant::now();
                Some(cached.script.clone())
            }
            Some(stamp) => match std::fs::read(&path) {
                Ok(source) => {
                    tracing::info!(target: "lua", "UPDATE - '{}'", cached.script.shown);
                    cached.script.source = source.into();
                    cached.script.mtime_secs = mtime_secs(stamp.modified);
                    cached.stamp = stamp;
                    cached.checked = Instant::now();
                    Some(cached.script.clone())
                }
                Err(_) => {
                    entries.remove(file);
                    None
                }
            },
            None => {
                entries.remove(file);
                None
            }
        }
    }

    fn candidate(&self, entry: &PackageEntry, file: &str) -> Option<(String, PathBuf)> {
        if entry.dir.to_string_lossy().contains(':') {
            tracing::warn!(target: "lua", "%package entry '{}': zip archives are not supported", entry.dir.display());
            return None;
        }
        let path = self.base_dir.join(&entry.dir).join(file);
        let shown = path.strip_prefix(&self.base_dir).unwrap_or(&path);
        let shown = shown.strip_prefix(".").unwrap_or(shown);
        Some((shown.to_string_lossy().into_owned(), path))
    }
}

fn mtime_secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn search(entries: &[(&str, u32)], reflush_ms: i64) -> SearchPath {
        SearchPath {
            entries: entries
                .iter()
                .map(|(d, p)| PackageEntry {
                    dir: d.into(),
                    position: *p,
                })
                .collect(),
            reflush_ms,
        }
    }

    /// "Compiles" a script by refusing any text that contains `SYNTAX ERROR`.
    fn compile(s: &Script) -> Result<String, String> {
        let text = String::from_utf8_lossy(&s.source).into_owned();
        if text.contains("SYNTAX ERROR") {
            Err("syntax error".into())
        } else {
            Ok(text)
        }
    }

    #[test]
    fn names_become_paths() {
        assert_eq!(split_name("packet"), ("packet.lua".to_string(), None));
        assert_eq!(split_name("v1.packet"), ("v1/packet.lua".to_string(), None));
        assert_eq!(
            split_name("pkg:mod.x+f+g"),
            ("pkg/mod/x.lua".to_string(), Some("f+g"))
        );
    }

    #[test]
    fn a_broken_primary_falls_back_and_a_repaired_one_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "package/x.lua", "SYNTAX ERROR");
        write(dir.path(), "rollback/x.lua", "old");
        let cache = ScriptCache::new(dir.path().to_path_buf());
        let path = search(&[("package", 0), ("rollback", 1)], -1);
        let (script, text) = cache.load("x.lua", &path, compile).unwrap();
        assert_eq!(
            (script.position, script.shown.as_str(), text.as_str()),
            (1, "rollback/x.lua", "old")
        );
        write(dir.path(), "package/x.lua", "new");
        // The fail-over copy is re-resolved once it is a second old.
        cache.entries.lock().get_mut("x.lua").unwrap().checked -= FAILOVER_RECHECK;
        let (script, text) = cache.load("x.lua", &path, compile).unwrap();
        assert_eq!((script.position, text.as_str()), (0, "new"));
    }

    #[test]
    fn primary_copies_reload_when_size_or_mtime_change() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.lua", "one");
        let cache = ScriptCache::new(dir.path().to_path_buf());
        let every_call = search(&[("", 0)], -1);
        assert_eq!(cache.load("a.lua", &every_call, compile).unwrap().1, "one");
        write(dir.path(), "a.lua", "two!");
        assert_eq!(cache.load("a.lua", &every_call, compile).unwrap().1, "two!");
        let never = search(&[("", 0)], 0);
        write(dir.path(), "a.lua", "three");
        assert_eq!(
            cache.load("a.lua", &never, compile).unwrap().1,
            "two!",
            "reflush 0 never re-checks"
        );
    }

    #[test]
    fn missing_scripts_and_cached_scripts_that_stop_compiling() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScriptCache::new(dir.path().to_path_buf());
        let path = search(&[("", 0)], -1);
        assert!(cache.load("none.lua", &path, compile).is_none());
        write(dir.path(), "b.lua", "fine");
        assert!(cache.load("b.lua", &path, compile).is_some());
        write(dir.path(), "b.lua", "SYNTAX ERROR now");
        assert!(cache.load("b.lua", &path, compile).is_none());
        assert!(cache.entries.lock().get("b.lua").is_none());
    }

    #[test]
    fn fingerprints_change_with_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ScriptCache::new(dir.path().to_path_buf());
        let path = search(&[("", 0)], -1);
        let before = cache.fingerprint("c.lua", &path);
        assert!(before.is_empty());
        write(dir.path(), "c.lua", "x");
        assert_ne!(cache.fingerprint("c.lua", &path), before);
    }
}
