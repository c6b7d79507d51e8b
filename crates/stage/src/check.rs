//! `stage check PATH`: validates the configuration and compiles every script on every search
//! path and every `%preload` file, printing `file:line: message` per problem (clarification 27).

use crate::node::load_config;
use stage_config::{NodeConfig, ProcessConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Runs the check; exit status 1 when anything is wrong.
pub fn run(extra: &[PathBuf], path: &Path) -> ExitCode {
    let config = match load_config(extra, path) {
        Ok(c) => c,
        Err(e) => {
            println!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let problems = problems(&config);
    for p in &problems {
        println!("{p}");
    }
    if problems.is_empty() {
        println!("ok: configuration and scripts are valid");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Every problem found in the scripts of `config`.
pub fn problems(config: &NodeConfig) -> Vec<String> {
    let base = &config.base_dir;
    let mut files = BTreeSet::new();
    let mut problems = Vec::new();
    for process in &config.processes {
        if process.lua_modules().next().is_none() {
            continue;
        }
        for entry in &process.lua_settings.package {
            let dir = entry.resolve(base);
            if dir.to_string_lossy().contains(':') || !dir.is_dir() {
                continue;
            }
            files.extend(lua_files(&dir));
        }
        for preload in &process.lua_settings.preload {
            files.extend(lua_files(&base.join(preload)));
        }
        problems.extend(missing_main_scripts(config, process));
    }
    for file in files {
        if let Some(p) = compile(base, &file) {
            problems.push(p);
        }
    }
    problems
}

fn lua_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "lua"))
        .map(|e| e.into_path())
        .collect()
}

fn compile(base: &Path, file: &Path) -> Option<String> {
    let shown = file
        .strip_prefix(base)
        .unwrap_or(file)
        .display()
        .to_string();
    let source = match std::fs::read(file) {
        Ok(s) => s,
        Err(e) => return Some(format!("{shown}:0: cannot read: {e}")),
    };
    let lua = mlua::Lua::new();
    let result = lua
        .load(&source)
        .set_name(format!("@{shown}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .into_function();
    match result {
        Ok(_) => None,
        Err(mlua::Error::SyntaxError { message, .. }) => Some(message),
        Err(e) => Some(format!("{shown}:0: {e}")),
    }
}

fn missing_main_scripts(config: &NodeConfig, process: &ProcessConfig) -> Vec<String> {
    let mut missing = Vec::new();
    for module in process.lua_modules() {
        let Some(name) = config.main_script(process, module) else {
            continue;
        };
        let (file, _) = stage_lua::scripts::split_name(&name);
        let found = process
            .lua_settings
            .package
            .iter()
            .any(|e| e.resolve(&config.base_dir).join(&file).is_file());
        if !found {
            missing.push(format!(
                "{}: main script '{name}' ({file}) is not on the search path of #startup entry {}",
                module.text, process.number
            ));
        }
    }
    missing
}
