//! Module spec strings of `#startup` (`runtime.md` §3.4, decisions 4 and 33):
//! `[ "=" ] NAME [ "+" ID ]`, e.g. `"lua.so+game"`, `"=ticket"`, `"index+rank"`.

use std::fmt;

use crate::at::At;
use crate::ConfigError;

/// What a module is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModuleKind {
    /// The Lua engine (`lua`, `lua.so`, `luajit`, `luajit.so`).
    Lua,
    /// The ranking service (`index`, `index.so`).
    Index,
    /// The HTTP client service (`curl`, `curl.so`).
    Curl,
    /// The built-in subscription router (`=route`).
    Route,
    /// The built-in concurrency limiter (`=ticket`).
    Ticket,
}

impl ModuleKind {
    /// The module name as written in a spec, without `=` or `.so` (`lua`, `index`, `route`, …).
    pub fn name(self) -> &'static str {
        match self {
            ModuleKind::Lua => "lua",
            ModuleKind::Index => "index",
            ModuleKind::Curl => "curl",
            ModuleKind::Route => "route",
            ModuleKind::Ticket => "ticket",
        }
    }

    /// Whether the module is a service (everything except the Lua engine).
    pub fn is_service(self) -> bool {
        self != ModuleKind::Lua
    }
}

impl fmt::Display for ModuleKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One module of a `#startup` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The spec exactly as written in the configuration.
    pub text: String,
    /// What the module is.
    pub kind: ModuleKind,
    /// The stage id (the text after the last `+`). A service written without `+` takes its
    /// module name (`=ticket` → `ticket`); a Lua module without `+` has no id: it is not
    /// addressable and accepts every key that reaches its process (`messaging.md` §6.7).
    pub id: Option<String>,
    /// Whether the spec starts with `=` (a module built into the platform: `=route`, `=ticket`).
    pub builtin: bool,
}

impl ModuleSpec {
    /// Parses `text`, reporting problems at `at`.
    pub(crate) fn parse(text: &str, at: &At) -> Result<ModuleSpec, ConfigError> {
        let builtin = text.starts_with('=');
        let rest = if builtin { &text[1..] } else { text };
        let name_end = rest.find(['@', '+']).unwrap_or(rest.len());
        if rest[name_end..].starts_with('@') {
            return Err(at.error(format!(
                "{text:?}: '@MAINSYMBOL' names an entry point of an SDK module; SDK modules are not supported"
            )));
        }
        let kind = kind_of(&rest[..name_end], text, builtin, at)?;
        let written_id = rest.rfind('+').map(|plus| &rest[plus + 1..]);
        let id = match written_id {
            Some(id) if !id.is_empty() => {
                check_id(id, text, at)?;
                Some(id.to_owned())
            }
            _ if kind.is_service() => Some(kind.name().to_owned()),
            Some(_) => return Err(at.error(format!("{text:?}: the id after '+' is empty"))),
            None => None,
        };
        Ok(ModuleSpec {
            text: text.to_owned(),
            kind,
            id,
            builtin,
        })
    }

    /// The spec with `.so` removed from its module name (`lua.so+game` → `lua+game`): the form
    /// used for every section lookup.
    pub fn normalized(&self) -> String {
        strip_so(&self.text)
    }

    /// The two section keys of §3.4, normalized: the whole spec, then the part before the first
    /// `+` (the same key twice when the spec has no `+`).
    pub(crate) fn section_keys(&self) -> [String; 2] {
        let whole = self.normalized();
        let prefix = whole.split('+').next().unwrap_or_default().to_owned();
        [whole, prefix]
    }
}

impl fmt::Display for ModuleSpec {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// Removes a `.so` suffix from the module-name part of a spec or section key
/// (`lua.so+game` → `lua+game`, `=ticket.so` → `=ticket`); other text is returned unchanged.
pub(crate) fn strip_so(text: &str) -> String {
    let name_end = text.find(['@', '+']).unwrap_or(text.len());
    match text[..name_end].strip_suffix(".so") {
        Some(name) => format!("{name}{}", &text[name_end..]),
        None => text.to_owned(),
    }
}

/// The kind named by a module name: its base name with leading non-letters removed, cut at the
/// first `.` (§3.4), then checked against the modules this platform has.
fn kind_of(name: &str, text: &str, builtin: bool, at: &At) -> Result<ModuleKind, ConfigError> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.trim_start_matches(|c: char| !c.is_ascii_alphabetic());
    let kind_name = base.split('.').next().unwrap_or(base);
    let kind = match kind_name {
        "lua" | "luajit" => ModuleKind::Lua,
        "index" => ModuleKind::Index,
        "curl" => ModuleKind::Curl,
        "route" => ModuleKind::Route,
        "ticket" => ModuleKind::Ticket,
        "odbc" => {
            return Err(at.error(format!(
                "{text:?}: odbc is a library that Lua scripts use (odbc.new), not a #startup module; \
                 configure connections under \"%odbc\" of the Lua section"
            )))
        }
        _ => {
            return Err(at.error(format!(
                "{text:?}: unknown module {name:?} (modules: lua, luajit, index, curl, =route, =ticket)"
            )))
        }
    };
    let wants_builtin = matches!(kind, ModuleKind::Route | ModuleKind::Ticket);
    if builtin && !wants_builtin {
        return Err(at.error(format!(
            "{text:?}: {kind} is not a built-in module; write it without '='"
        )));
    }
    if !builtin && wants_builtin {
        return Err(at.error(format!(
            "{text:?}: {kind} is a built-in module; write it as \"={kind}\""
        )));
    }
    Ok(kind)
}

/// A stage id must be usable in addresses (`messaging.md` §6.1).
fn check_id(id: &str, text: &str, at: &At) -> Result<(), ConfigError> {
    let bad_start = id.starts_with(['*', '=', '@', '<', '>']);
    let bad_char = id.contains(|c: char| c == ':' || c == ',' || c.is_whitespace());
    if bad_start || bad_char {
        return Err(at.error(format!(
            "{text:?}: the id {id:?} cannot be used in addresses (no ':', ',' or spaces, \
             and no leading '*', '=', '@', '<' or '>')"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModuleSpec, String> {
        ModuleSpec::parse(text, &At::file("stage.json").key("#startup").index(0))
            .map_err(|e| e.to_string())
    }

    fn spec(text: &str) -> ModuleSpec {
        match parse(text) {
            Ok(spec) => spec,
            Err(error) => panic!("{error}"),
        }
    }

    #[test]
    fn lua_specs_with_and_without_so() {
        for text in ["lua.so+game", "lua+game", "luajit.so+game", "luajit+game"] {
            let parsed = spec(text);
            assert_eq!(parsed.kind, ModuleKind::Lua, "{text}");
            assert_eq!(parsed.id.as_deref(), Some("game"), "{text}");
            assert!(!parsed.builtin);
            assert_eq!(parsed.text, text);
        }
        assert_eq!(spec("lua.so+game").normalized(), "lua+game");
        assert_eq!(spec("luajit.so+game").normalized(), "luajit+game");
    }

    #[test]
    fn lua_without_plus_has_no_id() {
        let parsed = spec("lua.so");
        assert_eq!(parsed.kind, ModuleKind::Lua);
        assert_eq!(parsed.id, None);
    }

    #[test]
    fn services_without_plus_take_their_module_name() {
        assert_eq!(spec("=ticket").id.as_deref(), Some("ticket"));
        assert_eq!(spec("=route").id.as_deref(), Some("route"));
        assert_eq!(spec("index.so").id.as_deref(), Some("index"));
        assert_eq!(spec("curl").id.as_deref(), Some("curl"));
        assert_eq!(spec("=ticket+").id.as_deref(), Some("ticket"));
        let ticket = spec("=ticket+tk");
        assert_eq!((ticket.kind, ticket.builtin), (ModuleKind::Ticket, true));
        assert_eq!(ticket.id.as_deref(), Some("tk"));
    }

    #[test]
    fn id_is_after_the_last_plus() {
        let parsed = spec("lua+a+b");
        assert_eq!(parsed.id.as_deref(), Some("b"));
        assert_eq!(
            parsed.section_keys(),
            ["lua+a+b".to_owned(), "lua".to_owned()]
        );
    }

    #[test]
    fn kind_comes_from_the_base_name() {
        assert_eq!(spec("./lib/lua.so+x").kind, ModuleKind::Lua);
        assert_eq!(spec("/opt/__index.so+r").kind, ModuleKind::Index);
        assert_eq!(spec("./lib/lua.so+x").normalized(), "./lib/lua+x");
    }

    #[test]
    fn rejected_specs() {
        let error = parse("odbc.so+db").err().unwrap_or_default();
        assert!(error.contains("odbc is a library"), "{error}");
        assert!(error.starts_with("stage.json: #startup[0]: "), "{error}");
        let error = parse("custom.so+x").err().unwrap_or_default();
        assert!(error.contains("unknown module"), "{error}");
        let error = parse("lua.so@main+x").err().unwrap_or_default();
        assert!(error.contains("SDK modules are not supported"), "{error}");
        let error = parse("route+r").err().unwrap_or_default();
        assert!(error.contains("write it as \"=route\""), "{error}");
        let error = parse("=lua+x").err().unwrap_or_default();
        assert!(error.contains("not a built-in"), "{error}");
        assert!(parse("lua+").is_err());
        assert!(parse("").is_err());
        assert!(parse("lua+a:b").is_err());
        assert!(parse("lua+*a").is_err());
        assert!(parse("lua+a b").is_err());
    }

    #[test]
    fn strip_so_only_touches_the_module_name() {
        assert_eq!(strip_so("lua.so"), "lua");
        assert_eq!(strip_so("lua.so+game"), "lua+game");
        assert_eq!(strip_so("=ticket.so+t"), "=ticket+t");
        assert_eq!(strip_so("lua+game.so"), "lua+game.so");
        assert_eq!(strip_so("#threads"), "#threads");
        assert_eq!(strip_so("lua"), "lua");
    }
}
