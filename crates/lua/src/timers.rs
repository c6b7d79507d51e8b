//! The `stage.addtask` timers of one stage (`runtime.md` §9.4): a heap ordered by due time and
//! creation order, with handles that name their stage.

use crate::handlers::Shipped;
use rustc_hash::FxHashMap;
use stage_core::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A pending task.
pub struct Task {
    pub shipped: Shipped,
    pub args: Vec<Value>,
    /// The last delay given; the next run after a reschedule uses it.
    pub interval: i64,
    due: u64,
}

/// The timers of one stage; times are monotonic milliseconds.
pub struct Timers {
    /// Tells handles of this stage from those of another.
    stage_tag: u64,
    next_id: u64,
    tasks: FxHashMap<u64, Task>,
    /// (due, id): ids grow with creation, so equal due times run in creation order.
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    capacity: usize,
    /// The task taken out to run, and whether it was cancelled meanwhile.
    running: Option<(u64, bool)>,
}

/// Why a timer call failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimerError {
    #[error("Not a task object")]
    NotAHandle,
    #[error("the task belongs to another stage")]
    OtherStage,
    #[error("too many pending tasks: this stage already has {0} (#limits.timers_per_stage)")]
    Full(usize),
}

impl Timers {
    /// An empty set of timers for the stage tagged `stage_tag`, holding at most `capacity`.
    pub fn new(stage_tag: u64, capacity: usize) -> Timers {
        Timers {
            stage_tag,
            next_id: 0,
            tasks: FxHashMap::default(),
            heap: BinaryHeap::new(),
            capacity,
            running: None,
        }
    }

    /// Adds a task first due `|delay|` ms after `now`; returns its handle.
    pub fn add(
        &mut self,
        now: u64,
        delay: i64,
        shipped: Shipped,
        args: Vec<Value>,
    ) -> Result<String, TimerError> {
        if self.tasks.len() >= self.capacity {
            return Err(TimerError::Full(self.capacity));
        }
        self.next_id += 1;
        let id = self.next_id;
        let due = now + delay.unsigned_abs();
        self.tasks.insert(
            id,
            Task {
                shipped,
                args,
                interval: delay,
                due,
            },
        );
        self.heap.push(Reverse((due, id)));
        Ok(format!("task: {:x}[{:x}]", self.stage_tag, id))
    }

    /// The task id a handle names.
    pub fn parse_handle(&self, handle: &str) -> Result<u64, TimerError> {
        let inner = handle
            .strip_prefix("task: ")
            .and_then(|h| h.strip_suffix(']'))
            .and_then(|h| h.split_once('['))
            .ok_or(TimerError::NotAHandle)?;
        let tag = u64::from_str_radix(inner.0, 16).map_err(|_| TimerError::NotAHandle)?;
        let id = u64::from_str_radix(inner.1, 16).map_err(|_| TimerError::NotAHandle)?;
        if tag != self.stage_tag {
            return Err(TimerError::OtherStage);
        }
        Ok(id)
    }

    /// Removes a task; false when it was not pending.
    pub fn cancel(&mut self, id: u64) -> bool {
        if let Some((running, cancelled)) = &mut self.running {
            if *running == id && !*cancelled {
                *cancelled = true;
                return true;
            }
        }
        self.tasks.remove(&id).is_some()
    }

    /// Changes a task's interval (and its due time when positive) and optionally its function.
    pub fn reschedule(
        &mut self,
        now: u64,
        id: u64,
        interval: Option<i64>,
        shipped: Option<Shipped>,
    ) -> bool {
        let Some(task) = self.tasks.get_mut(&id) else {
            return false;
        };
        if let Some(shipped) = shipped {
            task.shipped = shipped;
        }
        if let Some(interval) = interval {
            task.interval = interval;
            if interval > 0 {
                task.due = now + interval as u64;
                self.heap.push(Reverse((task.due, id)));
            }
        }
        true
    }

    /// Takes the earliest task due at `now`, if any; the caller runs it and then calls
    /// [`Timers::finish`].
    pub fn take_due(&mut self, now: u64) -> Option<(u64, Task)> {
        while let Some(&Reverse((due, id))) = self.heap.peek() {
            let live = self.tasks.get(&id).is_some_and(|t| t.due == due);
            if !live {
                self.heap.pop();
                continue;
            }
            if due > now {
                return None;
            }
            self.heap.pop();
            self.running = Some((id, false));
            return self.tasks.remove(&id).map(|t| (id, t));
        }
        None
    }

    /// Puts a task that ran back, due `delay` ms after `now` when `delay` is positive.
    pub fn finish(&mut self, now: u64, id: u64, mut task: Task, delay: Option<i64>) {
        let cancelled = self.running.take().is_some_and(|(_, c)| c);
        if cancelled {
            return;
        }
        if let Some(delay) = delay.filter(|d| *d > 0) {
            task.interval = delay;
            task.due = now + delay as u64;
            self.heap.push(Reverse((task.due, id)));
            self.tasks.insert(id, task);
        }
    }

    /// The next due time, if any task is pending.
    pub fn next_due(&mut self) -> Option<u64> {
        while let Some(&Reverse((due, id))) = self.heap.peek() {
            if self.tasks.get(&id).is_some_and(|t| t.due == due) {
                return Some(due);
            }
            self.heap.pop();
        }
        None
    }
}
