//! The worker pool of one (virtual) process (`runtime.md` §9.5, §9.8; `sandbox.md` §4.2): the
//! threads that run `stage.submit` and `thread.new` jobs, each with its own Lua state.
//!
//! Jobs with key 0 run as soon as a worker is free; jobs with the same non-zero key run one at
//! a time in submission order: the first takes the key, later ones wait in the key's queue and
//! the job that finishes hands the key to the next (decision Q15, no polling). A run that returns
//! `n > 0` is queued again `n` ms later (behind the jobs of its key submitted meanwhile). The
//! queue holds at most `#threads[1]` outstanding jobs (queued, running or waiting to repeat);
//! past 80 % the submitting thread waits up to 400 ms for the workers to catch up before
//! `stage.submit` returns (the spec's back-pressure, without running jobs in the caller's state).

use crate::budget::{self, Budget, Progress, Watching};
use crate::command::StageCommand;
use crate::convert;
use crate::handlers::Shipped;
use crate::origin::Origin;
use crate::process::ProcessContext;
use crate::sandbox::Sandbox;
use crate::stage::{report_error, reschedule_delay};
use crate::state;
use crossbeam_channel::Receiver;
use mlua::{Lua, MultiValue, Value as LuaValue};
use parking_lot::{Condvar, Mutex};
use stage_core::{Args, Message};
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a submitter waits at most when the queue is over 80 % full.
const BACK_PRESSURE_WAIT: Duration = Duration::from_millis(400);

/// What a job runs.
#[derive(Clone)]
pub enum JobFn {
    /// A shipped function's bytecode.
    Code(Arc<[u8]>),
    /// A script `FILE[+FIELD]`, resolved on the worker at every run.
    Script(String),
}

/// One job: a function, its copied arguments, and whom it acts for.
pub struct Job {
    pub key: i64,
    pub func: JobFn,
    pub args: Args,
    pub origin: Origin,
    /// For a `thread.new` job, the id of its callback at the origin.
    pub thread: Option<String>,
}

/// The job a worker is running, as the API sees it (app data of the worker's state).
pub struct JobScope {
    pub process: Arc<ProcessContext>,
    pub origin: Origin,
    pub thread: Option<String>,
}

/// Why a job was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the job queue is full: {0} jobs are outstanding (#threads[1])")]
    Full(usize),
    #[error("the worker pool is stopping")]
    Stopping,
}

enum Task {
    Run(Job),
    Stop,
}

struct Delayed {
    due: Instant,
    seq: u64,
    job: Job,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    /// Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

struct Shared {
    tx: crossbeam_channel::Sender<Task>,
    rx: Receiver<Task>,
    capacity: usize,
    outstanding: AtomicUsize,
    /// Keys taken by a queued or running job, with the jobs waiting for them.
    keys: Mutex<HashMap<i64, VecDeque<Job>>>,
    delayed: Mutex<BinaryHeap<Delayed>>,
    delayed_changed: Condvar,
    next_seq: AtomicU64,
    /// Signalled whenever a job finishes for good (back-pressure waits on it).
    finished: Condvar,
    finished_lock: Mutex<()>,
    /// Submitters waiting on `finished`.
    waiting: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    fn new(capacity: usize) -> Arc<Shared> {
        let (tx, rx) = crossbeam_channel::unbounded();
        Arc::new(Shared {
            tx,
            rx,
            capacity: capacity.max(1),
            outstanding: AtomicUsize::new(0),
            keys: Mutex::new(HashMap::new()),
            delayed: Mutex::new(BinaryHeap::new()),
            delayed_changed: Condvar::new(),
            next_seq: AtomicU64::new(0),
            finished: Condvar::new(),
            finished_lock: Mutex::new(()),
            waiting: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        })
    }

    fn dispatch(&self, job: Job) {
        if job.key != 0 {
            let mut keys = self.keys.lock();
            if let Some(waiting) = keys.get_mut(&job.key) {
                waiting.push_back(job);
                return;
            }
            keys.insert(job.key, VecDeque::new());
        }
        // The pool holds the receiver: sending cannot fail.
        let _ = self.tx.send(Task::Run(job));
    }

    fn release_key(&self, key: i64) {
        if key == 0 {
            return;
        }
        let mut keys = self.keys.lock();
        let next = keys.get_mut(&key).and_then(VecDeque::pop_front);
        match next {
            Some(job) => {
                let _ = self.tx.send(Task::Run(job));
            }
            None => {
                keys.remove(&key);
            }
        }
    }

    fn finish(&self, job: Job, again_ms: Option<i64>) {
        let key = job.key;
        match again_ms {
            Some(ms) if !self.stop.load(Ordering::Relaxed) => {
                let due = Instant::now() + Duration::from_millis(ms as u64);
                let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
                self.delayed.lock().push(Delayed { due, seq, job });
                self.delayed_changed.notify_one();
            }
            _ => {
                self.outstanding.fetch_sub(1, Ordering::SeqCst);
                if self.waiting.load(Ordering::SeqCst) > 0 {
                    let _guard = self.finished_lock.lock();
                    self.finished.notify_all();
                }
            }
        }
        self.release_key(key);
    }
}

/// The worker threads of one process.
pub struct WorkerPool {
    shared: Arc<Shared>,
    workers: usize,
}

impl WorkerPool {
    /// Starts `workers` threads for `process` (and the thread that repeats jobs), with room for
    /// `capacity` outstanding jobs.
    pub fn start(
        process: &Arc<ProcessContext>,
        workers: usize,
        capacity: usize,
    ) -> std::io::Result<WorkerPool> {
        let pool = WorkerPool {
            shared: Shared::new(capacity),
            workers: workers.max(1),
        };
        let spawned = (0..pool.workers)
            .map(|n| {
                let (process, shared) = (process.clone(), pool.shared.clone());
                std::thread::Builder::new()
                    .name(format!("worker {}.{n}", process.number))
                    .spawn(move || work(&process, &shared))
            })
            .chain(std::iter::once({
                let timer = pool.shared.clone();
                std::thread::Builder::new()
                    .name(format!("jobs {}", process.number))
                    .spawn(move || repeat_due(&timer))
            }))
            .collect::<std::io::Result<Vec<_>>>();
        if let Err(e) = spawned {
            pool.stop();
            return Err(e);
        }
        Ok(pool)
    }

    /// Queues a job.
    pub fn submit(&self, job: Job) -> Result<(), SubmitError> {
        let shared = &self.shared;
        if shared.stop.load(Ordering::Relaxed) {
            return Err(SubmitError::Stopping);
        }
        let before = shared.outstanding.fetch_add(1, Ordering::SeqCst);
        if before >= shared.capacity {
            shared.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(SubmitError::Full(shared.capacity));
        }
        shared.dispatch(job);
        let high = shared.capacity - shared.capacity / 5;
        if before + 1 > high {
            let deadline = Instant::now() + BACK_PRESSURE_WAIT;
            let mut guard = shared.finished_lock.lock();
            shared.waiting.fetch_add(1, Ordering::SeqCst);
            while shared.outstanding.load(Ordering::SeqCst) > high
                && !shared.finished.wait_until(&mut guard, deadline).timed_out()
            {}
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Stops the workers after the jobs they are running; queued jobs are dropped.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.workers {
            let _ = self.shared.tx.send(Task::Stop);
        }
        let _guard = self.shared.delayed.lock();
        self.shared.delayed_changed.notify_all();
    }
}

/// Queues repeating jobs again when they are due.
fn repeat_due(shared: &Shared) {
    let mut delayed = shared.delayed.lock();
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        match delayed.peek().map(|d| d.due) {
            Some(due) if due <= now => {
                if let Some(d) = delayed.pop() {
                    shared.dispatch(d.job);
                }
            }
            Some(due) => {
                shared.delayed_changed.wait_until(&mut delayed, due);
            }
            None => shared.delayed_changed.wait(&mut delayed),
        }
    }
}

/// One worker: its own state, then jobs until told to stop.
fn work(process: &Arc<ProcessContext>, shared: &Shared) {
    let setup = || -> mlua::Result<(Lua, Rc<Sandbox>, Progress, Watching)> {
        let (lua, sandbox) = state::new_state(process)?;
        let progress = Progress::default();
        let limits = &process.limits;
        let budget = Budget {
            time: Duration::from_millis(limits.job_budget_ms),
            what: "#limits.job_budget_ms",
            memory_bytes: limits.lua_memory_bytes(),
        };
        let watching = budget::enforce(&lua, &budget, &progress)?;
        Ok((lua, sandbox, progress, watching))
    };
    let (lua, sandbox, progress, watching) = match setup() {
        Ok(s) => s,
        Err(e) => {
            return tracing::error!(
                "process {}: a worker cannot create its Lua state: {e}",
                process.number
            )
        }
    };
    {
        let _running = progress.begin(&lua);
        state::preload(&lua, process);
    }
    let worker = Worker {
        _watching: watching,
        lua,
        sandbox,
        progress,
    };
    while let Ok(Task::Run(job)) = shared.rx.recv() {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let again = worker.run(process, &job);
        shared.finish(job, again);
    }
}

struct Worker {
    /// Dropped first: the state is watched until it closes.
    _watching: Watching,
    lua: Lua,
    sandbox: Rc<Sandbox>,
    progress: Progress,
}

impl Worker {
    /// Runs one job with fresh private globals; returns the delay after which it repeats.
    fn run(&self, process: &Arc<ProcessContext>, job: &Job) -> Option<i64> {
        let _running = self.progress.begin(&self.lua);
        self.lua.set_app_data(Rc::new(JobScope {
            process: process.clone(),
            origin: job.origin.clone(),
            thread: job.thread.clone(),
        }));
        let outcome = self.call(process, job);
        let lua = &self.lua;
        if let Err(e) = self.sandbox.reset() {
            report_error(lua, &e);
        }
        // Decision Q16: no job context is left behind.
        lua.remove_app_data::<Rc<JobScope>>();
        let results = match outcome {
            Ok(results) => results,
            Err(e) => {
                report_error(lua, &e);
                self.thread_done(job, None);
                return None;
            }
        };
        if let Some(callback) = &job.thread {
            let last = convert::to_args(lua, results.iter())
                .map(|values| Message::new(job.origin.own_key(callback), values));
            match last {
                Ok(last) => self.thread_done(job, Some(last)),
                Err(e) => {
                    report_error(lua, &e);
                    self.thread_done(job, None);
                }
            }
            return None;
        }
        reschedule_delay(results.front(), "stage.submit job")
    }

    /// Tells the origin that a `thread.new` job ended, with the message of its return values.
    fn thread_done(&self, job: &Job, last: Option<Message>) {
        if let Some(callback) = &job.thread {
            let done = StageCommand::ThreadDone {
                callback: callback.clone(),
                last,
            };
            if let Err(e) = job.origin.command(done) {
                report_error(&self.lua, &e);
            }
        }
    }

    fn call(&self, process: &ProcessContext, job: &Job) -> mlua::Result<MultiValue> {
        let lua = &self.lua;
        let env = &self.sandbox.env;
        let args = convert::from_args(lua, &job.args, env)?;
        match &job.func {
            JobFn::Code(code) => Shipped::load(lua, code.clone(), env)?
                .fresh(lua)?
                .call(args),
            JobFn::Script(name) => {
                let (file, field) = crate::scripts::split_name(name);
                let Some((_, value)) = crate::api::stage::run_script(lua, process, env, &file)
                else {
                    return Err(mlua::Error::runtime(format!(
                        "stage.submit: script '{name}' is not found"
                    )));
                };
                match crate::api::stage::select_field(lua, value?, field)? {
                    LuaValue::Function(f) => f.call(args),
                    number @ (LuaValue::Integer(_) | LuaValue::Number(_)) => {
                        Ok(MultiValue::from_iter([number]))
                    }
                    _ => Ok(MultiValue::new()),
                }
            }
        }
    }
}
