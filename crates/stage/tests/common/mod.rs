//! Runs the real `stage` binary on scripts written into a temporary application directory.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Longest any test run may take before it is killed and the test fails.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A temporary application directory.
pub struct App {
    dir: tempfile::TempDir,
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
}

impl Output {
    /// Standard output as lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl App {
    /// An empty application directory.
    pub fn new() -> App {
        App {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// An application whose main script (quick start) is `main.lua`.
    pub fn script(text: &str) -> App {
        let app = App::new();
        app.file("main.lua", text);
        app
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders).
    pub fn file(&self, rel: &str, text: &str) -> &App {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
        self
    }

    /// `stage ARGS…` in the application directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stage"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("STAGE_LOG");
        cmd
    }

    /// Runs `stage ARGS…` to its end (at most [`LIMIT`]).
    pub fn run_args(&self, args: &[&str]) -> Output {
        let mut running = Running::start(self.command(args));
        running.wait_exit(LIMIT)
    }

    /// `stage run main.lua -- ARGS`, to its end: the script must call `stage.exit()`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["run", "main.lua", "--"];
        all.extend_from_slice(args);
        self.run_args(&all)
    }

    /// Starts `stage ARGS…` and returns while it runs.
    pub fn start(&self, args: &[&str]) -> Running {
        Running::start(self.command(args))
    }
}

/// A running `stage` process whose output is read line by line.
pub struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen_out: Vec<String>,
    seen_err: Vec<String>,
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Running {
    fn start(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stage");
        let stdout = lines_of(child.stdout.take().expect("stdout"));
        let stderr = lines_of(child.stderr.take().expect("stderr"));
        Running {
            child,
            stdout,
            stderr,
            seen_out: Vec::new(),
            seen_err: Vec::new(),
        }
    }

    /// Waits until standard output has a line matching `pred`; panics after `timeout`.
    pub fn wait_stdout(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        wait_line(
            &self.stdout,
            &mut self.seen_out,
            &mut self.seen_err,
            &self.stderr,
            timeout,
            pred,
            "stdout",
        )
    }

    /// Waits until standard error has a line matching `pred`; panics after `timeout`.
    pub fn wait_stderr(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        wait_line(
            &self.stderr,
            &mut self.seen_err,
            &mut self.seen_out,
            &self.stdout,
            timeout,
            pred,
            "stderr",
        )
    }

    /// Sends a signal to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to end (killing it after `timeout`, which fails the test).
    pub fn wait_exit(&mut self, timeout: Duration) -> Output {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain();
                panic!(
                    "stage did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.seen_out.join("\n"),
                    self.seen_err.join("\n")
                );
            }
            // Exit is observed by polling try_wait; output keeps flowing meanwhile.
            if let Ok(line) = self.stdout.recv_timeout(Duration::from_millis(5)) {
                self.seen_out.push(line);
            }
        };
        self.drain();
        Output {
            stdout: self.seen_out.iter().map(|l| format!("{l}\n")).collect(),
            stderr: self.seen_err.iter().map(|l| format!("{l}\n")).collect(),
            code: status.code(),
        }
    }

    fn drain(&mut self) {
        // Both pipes close when the process ends: read them to their end.
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(2)) {
            self.seen_out.push(line);
        }
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen_err.push(line);
        }
    }
}

fn wait_line(
    rx: &Receiver<String>,
    seen: &mut Vec<String>,
    other_seen: &mut Vec<String>,
    other: &Receiver<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
    what: &str,
) -> String {
    if let Some(hit) = seen.iter().find(|l| pred(l)) {
        return hit.clone();
    }
    let deadline = Instant::now() + timeout;
    loop {
        while let Ok(line) = other.try_recv() {
            other_seen.push(line);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "no matching line on {what} within {timeout:?}\nseen on {what}:\n{}\nother stream:\n{}",
                seen.join("\n"),
                other_seen.join("\n")
            );
        }
        if let Ok(line) = rx.recv_timeout(left.min(Duration::from_millis(50))) {
            seen.push(line.clone());
            if pred(&line) {
                return line;
            }
        }
    }
}

/// The path of a file in the repository's `examples/` folder.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}
