//! The probes of every waited service run on two small fixed pools of threads, not on a thread
//! per service: a flat stack of thousands of services waited for at once would otherwise cost
//! that many threads (each a pid, counted against `pid_max`), and every probe command a fork
//! more, all at once.
//!
//! Probe commands (`cmd`, and a container's `docker exec` probes) are child processes: at most
//! [`Pool::new`]'s `commands` of them run at once (`--max-probe-commands`). HTTP and TCP probes
//! block on their socket (ureq is blocking) and get [`NET_WORKERS`] threads. Each pool serves its queue earliest-due first, and a service
//! has at most one probe queued or running, so when a bound is reached the schedule degrades
//! fairly: every service is still probed, each a little later. Threads are started only when a
//! probe finds every existing one busy, so a small stack costs a few.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Threads for HTTP and TCP probes: each blocks at most one probe timeout.
pub const NET_WORKERS: usize = 32;

/// One probe, which reports its own outcome (a channel send).
pub type Task = Box<dyn FnOnce() + Send>;

/// Which pool a probe runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A child process (`cmd`, `docker exec`): bounded by `--max-probe-commands`.
    Command,
    /// A socket (HTTP, TCP).
    Net,
}

/// One probe to run.
struct Job {
    due: Instant,
    seq: u64,
    task: Task,
    /// Set when the wait is over before its probe ran: the probe is skipped.
    cancelled: Arc<AtomicBool>,
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Job) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    fn cmp(&self, other: &Job) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// One pool's queue and threads.
struct Queue {
    jobs: BinaryHeap<Reverse<Job>>,
    threads: usize,
    idle: usize,
}

struct Lane {
    name: &'static str,
    limit: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
}

/// The probe pools.
pub struct Pool {
    commands: Arc<Lane>,
    net: Arc<Lane>,
    seq: AtomicU64,
}

impl Pool {
    /// Pools allowing `commands` probe commands at once (at least 1).
    pub fn new(commands: usize) -> Pool {
        let lane = |name, limit| {
            Arc::new(Lane {
                name,
                limit,
                queue: Mutex::new(Queue {
                    jobs: BinaryHeap::new(),
                    threads: 0,
                    idle: 0,
                }),
                ready: Condvar::new(),
            })
        };
        Pool {
            commands: lane("probe-cmd", commands.max(1)),
            net: lane("probe-net", NET_WORKERS),
            seq: AtomicU64::new(0),
        }
    }

    /// Queue one probe on `kind`'s pool, due at `due` (earlier ones run first). `cancelled`
    /// set before it runs skips it. An error: no thread could be started and none runs.
    pub fn submit(
        &self,
        kind: Kind,
        due: Instant,
        cancelled: Arc<AtomicBool>,
        task: Task,
    ) -> std::io::Result<()> {
        let lane = match kind {
            Kind::Command => &self.commands,
            Kind::Net => &self.net,
        };
        let job = Job {
            due,
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            task,
            cancelled,
        };
        let mut queue = lane
            .queue
            .lock()
            .map_err(|_| std::io::Error::other("the probe queue is poisoned"))?;
        queue.jobs.push(Reverse(job));
        // More probes queued than idle threads to take them: one more thread, up to the bound.
        if queue.jobs.len() > queue.idle && queue.threads < lane.limit {
            let worker = lane.clone();
            let spawned = std::thread::Builder::new()
                .name(lane.name.into())
                .spawn(move || work(&worker));
            match spawned {
                Ok(_) => queue.threads += 1,
                Err(e) if queue.threads == 0 => return Err(e),
                // The threads already running will get to it.
                Err(_) => {}
            }
        }
        drop(queue);
        lane.ready.notify_one();
        Ok(())
    }
}

/// A worker: take the earliest-due probe, run it, report it; forever.
fn work(lane: &Lane) {
    let Ok(mut queue) = lane.queue.lock() else {
        return;
    };
    loop {
        let Some(Reverse(job)) = queue.jobs.pop() else {
            queue.idle += 1;
            queue = match lane.ready.wait(queue) {
                Ok(queue) => queue,
                Err(_) => return,
            };
            queue.idle -= 1;
            continue;
        };
        if job.cancelled.load(Ordering::Relaxed) {
            continue;
        }
        drop(queue);
        (job.task)();
        queue = match lane.queue.lock() {
            Ok(queue) => queue,
            Err(_) => return,
        };
    }
}
