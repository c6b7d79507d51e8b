//! `#threads`: `N` or `[N, Q]` — worker threads per stage process and the capacity of its job
//! queue (`runtime.md` §4.4).

use serde_json::Value;

use crate::at::At;
use crate::ConfigError;

/// Default capacity of a process's submission queue.
const DEFAULT_QUEUE: usize = 100_000;

/// The worker pool of each stage process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadsConfig {
    /// Worker threads per process (`N ≤ 0` or absent: 2 × the available CPUs).
    pub workers: usize,
    /// Capacity of the queue of outstanding `stage.submit` / `thread.new` jobs.
    pub queue: usize,
}

impl Default for ThreadsConfig {
    /// No `#threads`: 2 × CPUs workers, a queue of 100000 jobs.
    fn default() -> Self {
        ThreadsConfig {
            workers: auto_workers(),
            queue: DEFAULT_QUEUE,
        }
    }
}

impl ThreadsConfig {
    /// Parses `N`, `[N]` or `[N, Q]`.
    pub(crate) fn parse(value: &Value, at: &At) -> Result<ThreadsConfig, ConfigError> {
        let (workers, queue) = match value {
            Value::Number(_) => (at.integer(value)?, None),
            Value::Array(items) => match items.as_slice() {
                [workers] => (at.index(0).integer(workers)?, None),
                [workers, queue] => (
                    at.index(0).integer(workers)?,
                    Some(at.index(1).positive(queue)?),
                ),
                _ => {
                    return Err(at.error(format!(
                        "expected N or [N, Q], found {} elements",
                        items.len()
                    )))
                }
            },
            other => return Err(at.expected("N or [N, Q]", other)),
        };
        let workers = match usize::try_from(workers) {
            Ok(count) if count > 0 => count,
            _ => auto_workers(),
        };
        let queue = match queue {
            Some(queue) => usize::try_from(queue)
                .map_err(|_| at.index(1).error(format!("{queue} is too large")))?,
            None => DEFAULT_QUEUE,
        };
        Ok(ThreadsConfig { workers, queue })
    }
}

/// 2 × the number of CPUs available to this process.
fn auto_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()) * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<ThreadsConfig, String> {
        ThreadsConfig::parse(&value, &At::file("f").key("#threads")).map_err(|e| e.to_string())
    }

    fn cpus2() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get()) * 2
    }

    #[test]
    fn defaults() {
        let threads = ThreadsConfig::default();
        assert_eq!(threads.workers, cpus2());
        assert_eq!(threads.queue, 100_000);
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(
            parse(json!(8)).ok(),
            Some(ThreadsConfig {
                workers: 8,
                queue: 100_000
            })
        );
        assert_eq!(
            parse(json!([8, 50000])).ok(),
            Some(ThreadsConfig {
                workers: 8,
                queue: 50_000
            })
        );
        assert_eq!(parse(json!([3])).ok().map(|t| t.workers), Some(3));
        assert_eq!(parse(json!(1)).ok().map(|t| t.workers), Some(1));
    }

    #[test]
    fn zero_or_negative_workers_mean_two_per_cpu() {
        assert_eq!(parse(json!(0)).ok().map(|t| t.workers), Some(cpus2()));
        assert_eq!(
            parse(json!([-1, 10])).ok().map(|t| t.workers),
            Some(cpus2())
        );
        assert_eq!(parse(json!([-1, 10])).ok().map(|t| t.queue), Some(10));
    }

    #[test]
    fn bad_forms_are_errors() {
        assert!(parse(json!("8")).is_err());
        assert!(parse(json!([8, 0])).is_err());
        assert!(parse(json!([8, 1, 2])).is_err());
        assert!(parse(json!([])).is_err());
        assert_eq!(
            parse(json!([1.5])).err().as_deref(),
            Some("f: #threads[0]: expected an integer, found 1.5")
        );
    }
}
