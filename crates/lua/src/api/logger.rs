//! The `logger` library (`runtime.md` §9.10; `log4cxx` is an alias): tab-joined `tostring`s with
//! `%` escapes, emitted through `tracing` on a named logger.
//!
//! Logger names are dynamic, so their levels are kept here, not in `tracing`'s filter: the
//! binary calls [`configure`] with the same directives it gives `tracing` (`"info,audit=warn"`),
//! and every record is emitted on the target `script` with the logger name as a field.

use mlua::{Lua, MultiValue, Table, Value as LuaValue};
use parking_lot::RwLock;
use std::collections::HashMap;
use tracing::Level;

struct Levels {
    default: Level,
    by_logger: HashMap<String, Level>,
}

static LEVELS: RwLock<Option<Levels>> = RwLock::new(None);

/// Sets logger levels from tracing-style directives: `"info"`, `"warn,audit=trace,lua=debug"`.
/// Unknown level words are ignored.
pub fn configure(directives: &str) {
    let mut levels = Levels {
        default: Level::INFO,
        by_logger: HashMap::new(),
    };
    for directive in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        match directive.split_once('=') {
            Some((name, level)) => {
                if let Some(level) = parse_level(level) {
                    levels.by_logger.insert(name.to_string(), level);
                }
            }
            None => {
                if let Some(level) = parse_level(directive) {
                    levels.default = level;
                }
            }
        }
    }
    *LEVELS.write() = Some(levels);
}

fn parse_level(word: &str) -> Option<Level> {
    match word.to_ascii_lowercase().as_str() {
        "trace" => Some(Level::TRACE),
        "debug" => Some(Level::DEBUG),
        "info" | "out" => Some(Level::INFO),
        "warn" => Some(Level::WARN),
        "error" => Some(Level::ERROR),
        _ => None,
    }
}

fn enabled(logger: &str, level: Level) -> bool {
    let levels = LEVELS.read();
    let threshold = match levels.as_ref() {
        Some(l) => *l.by_logger.get(logger).unwrap_or(&l.default),
        None => Level::INFO,
    };
    level <= threshold
}

/// Creates the `logger` table.
pub fn install(lua: &Lua) -> mlua::Result<Table> {
    let logger = lua.create_table()?;
    for (name, level) in [
        ("out", Level::INFO),
        ("info", Level::INFO),
        ("warn", Level::WARN),
        ("error", Level::ERROR),
        ("trace", Level::TRACE),
    ] {
        logger.set(
            name,
            lua.create_function(move |lua, args: MultiValue| log(lua, level, args))?,
        )?;
    }
    Ok(logger)
}

/// Where the calling Lua function is: its source, kind and line.
struct Caller {
    source: String,
    what: String,
    line: i64,
}

/// The nearest calling function that belongs to a script (the API wrappers of
/// [`crate::errors`] and C functions are skipped).
fn caller(lua: &Lua) -> Caller {
    for level in 1..16 {
        let found = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let wrapper = source.what == "C" || source.source.as_deref() == Some("=stage");
            (!wrapper).then(|| Caller {
                source: source.short_src.map(|s| s.into_owned()).unwrap_or_default(),
                what: source.what.to_string(),
                line: debug.current_line().unwrap_or(0) as i64,
            })
        });
        match found {
            Some(Some(caller)) => return caller,
            Some(None) => continue,
            None => break,
        }
    }
    Caller {
        source: "?".into(),
        what: "C".into(),
        line: -1,
    }
}

fn log(lua: &Lua, level: Level, args: MultiValue) -> mlua::Result<()> {
    let caller = caller(lua);
    let mut record = Record {
        logger: "lua".to_string(),
        level,
        text: String::new(),
    };
    let mut previous_wrote = false;
    for (i, arg) in args.iter().enumerate() {
        let text = arg.to_string()?;
        let expanded = expand(&text, &caller, &mut record);
        if i > 0 && previous_wrote {
            record.text.push('\t');
        }
        previous_wrote = !expanded.is_empty();
        record.text.push_str(&expanded);
    }
    emit(&record);
    Ok(())
}

struct Record {
    logger: String,
    level: Level,
    text: String,
}

fn emit(record: &Record) {
    if !enabled(&record.logger, record.level) {
        return;
    }
    let (logger, text) = (record.logger.as_str(), record.text.as_str());
    match record.level {
        Level::ERROR => tracing::error!(target: "script", logger, "{text}"),
        Level::WARN => tracing::warn!(target: "script", logger, "{text}"),
        Level::INFO => tracing::info!(target: "script", logger, "{text}"),
        Level::DEBUG => tracing::debug!(target: "script", logger, "{text}"),
        Level::TRACE => tracing::trace!(target: "script", logger, "{text}"),
    }
}

/// Expands the `%` escapes of one argument; `%{=logger:level}` switches `record`.
fn expand(text: &str, caller: &Caller, record: &mut Record) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(&(_, d)) = chars.peek() {
            if !d.is_ascii_digit() {
                break;
            }
            width.push(d);
            chars.next();
        }
        let Some((at, code)) = chars.next() else {
            break;
        };
        match code {
            'F' => out.push_str(&caller.source),
            'L' => out.push_str(&caller.line.to_string()),
            'M' => out.push_str(&caller.what),
            'l' => out.push_str(&format!(
                "{}[{}:{}]",
                caller.source, caller.what, caller.line
            )),
            '{' => {
                let rest = &text[at + 1..];
                let Some(end) = rest.find('}') else {
                    out.push('{');
                    continue;
                };
                let inner = &rest[..end];
                for _ in 0..inner.chars().count() + 1 {
                    chars.next();
                }
                if let Some(switch) = inner.strip_prefix('=') {
                    let (logger, level) = switch.split_once(':').unwrap_or((switch, ""));
                    if !logger.is_empty() {
                        record.logger = logger.to_string();
                    }
                    if let Some(level) = parse_level(level) {
                        record.level = level;
                    }
                } else {
                    let value = std::env::var(inner).unwrap_or_default();
                    match width.parse::<usize>() {
                        Ok(w) => {
                            let cut: String = value.chars().take(w).collect();
                            out.push_str(&format!("{cut:>w$}"));
                        }
                        Err(_) => out.push_str(&value),
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Writes one line per `print` call to standard output, flushed, so that lines of different
/// threads never interleave (decision 5).
pub fn print(lua: &Lua, args: MultiValue) -> mlua::Result<()> {
    use std::io::Write;
    let mut line = Vec::with_capacity(64);
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        match arg {
            LuaValue::String(s) => line.extend_from_slice(&s.as_bytes()),
            LuaValue::Integer(n) => line.extend_from_slice(n.to_string().as_bytes()),
            other => {
                let text: mlua::LuaString = lua
                    .globals()
                    .get::<mlua::Function>("tostring")?
                    .call(other)?;
                line.extend_from_slice(&text.as_bytes());
            }
        }
    }
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    out.write_all(&line)
        .and_then(|()| out.flush())
        .map_err(mlua::Error::external)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            source: "package/start.lua".into(),
            what: "main".into(),
            line: 7,
        }
    }

    fn record() -> Record {
        Record {
            logger: "lua".into(),
            level: Level::INFO,
            text: String::new(),
        }
    }

    #[test]
    fn location_escapes() {
        let mut r = record();
        assert_eq!(
            expand("at %l", &caller(), &mut r),
            "at package/start.lua[main:7]"
        );
        assert_eq!(
            expand("%F|%M|%L|%%|%q", &caller(), &mut r),
            "package/start.lua|main|7|%|q"
        );
    }

    #[test]
    fn environment_escapes_with_width() {
        std::env::set_var("STAGE_LOGGER_TEST", "alice");
        let mut r = record();
        assert_eq!(
            expand("u=%{STAGE_LOGGER_TEST}", &caller(), &mut r),
            "u=alice"
        );
        assert_eq!(
            expand("[%8{STAGE_LOGGER_TEST}]", &caller(), &mut r),
            "[   alice]"
        );
        assert_eq!(
            expand("[%3{STAGE_LOGGER_TEST}]", &caller(), &mut r),
            "[ali]"
        );
        assert_eq!(expand("%{STAGE_LOGGER_UNSET_X}.", &caller(), &mut r), ".");
    }

    #[test]
    fn logger_switch_produces_no_text() {
        let mut r = record();
        assert_eq!(expand("%{=audit:WARN}", &caller(), &mut r), "");
        assert_eq!((r.logger.as_str(), r.level), ("audit", Level::WARN));
        let mut r = record();
        expand("%{=:error}", &caller(), &mut r);
        assert_eq!((r.logger.as_str(), r.level), ("lua", Level::ERROR));
    }

    #[test]
    fn levels_per_logger() {
        configure("warn,audit=trace");
        assert!(!enabled("lua", Level::INFO));
        assert!(enabled("lua", Level::WARN));
        assert!(enabled("audit", Level::TRACE));
        configure("info");
    }
}
