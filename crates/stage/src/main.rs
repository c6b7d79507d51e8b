//! `stage`: runs a node of Lua stages (`stage run`), checks an application (`stage check`) and
//! measures the runtime (`stage bench`).

mod bench;
mod check;
mod logging;
mod node;
mod services;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Lua states, messages and the engines allocate many small blocks on one thread and free them on
/// another; glibc's malloc spends much of its time on that pattern, jemalloc does not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation (`_RJEM_MALLOC_CONF` in the environment
/// still overrides them). A Lua collection frees hundreds of same-sized tables at once, and a
/// stage drops a whole reply of another thread's blocks: with the default per-thread caches
/// (at most 200 blocks a size) such bursts overflow them and each overflow is flushed to the
/// arenas under their locks. Caches of up to 1,024 blocks a size cut the receiving stage's
/// instructions per top-100 reply by about 5 %, for at most a few hundred kilobytes a thread.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: Option<&'static std::ffi::c_char> =
    Some(unsafe { &*c"tcache_nslots_small_max:1024,lg_tcache_nslots_mul:3".as_ptr() });

#[derive(Parser)]
#[command(
    name = "stage",
    version,
    about = "Run backend logic written as small Lua functions"
)]
struct Cli {
    /// Log filter in tracing syntax, e.g. "info,audit=debug" (default: $STAGE_LOG or "info").
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: PATH is a directory with stage.json (or conf/stage.json), or one .lua file.
    Run {
        /// Configuration files, merged per top-level key (first wins), before PATH's stage.json.
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        /// While this file exists the node's stages leave the routing rotation (drain switch).
        #[arg(long)]
        suspend_file: Option<PathBuf>,
        /// Run every #startup entry in this one process (the only mode of this version).
        #[arg(long)]
        single_process: bool,
        path: PathBuf,
        /// Program arguments: `process.args` and the main script's `arg`.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Validate the configuration and compile every script on every search path.
    Check {
        #[arg(short = 'c', long = "config")]
        config: Vec<PathBuf>,
        path: PathBuf,
    },
    /// Measure messages, synchronous calls and timers per second on one stage thread.
    Bench {
        /// Messages (and calls) per measurement.
        #[arg(long, default_value_t = 2_000_000)]
        messages: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = cli
        .log
        .or_else(|| std::env::var("STAGE_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    logging::init(&filter);
    let program = std::env::args().next().unwrap_or_else(|| "stage".into());
    let result = match cli.command {
        Command::Run {
            config,
            suspend_file,
            single_process: _,
            path,
            args,
        } => node::load_config(&config, &path)
            .map_err(|e| e.to_string())
            .and_then(|c| node::run(c, program, args, suspend_file).map_err(|e| e.to_string())),
        Command::Check { config, path } => return check::run(&config, &path),
        Command::Bench { messages } => bench::run(messages).map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stage: {e}");
            ExitCode::FAILURE
        }
    }
}
