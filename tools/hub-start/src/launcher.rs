//! A small fixed pool of threads that launch `run` processes, so the deploy loop never waits
//! for one: a launch blocks until the child has exec'd (and writes its log header and pid
//! file), about 2 ms on a loaded machine, and a burst of due services launched one after the
//! other on the loop's thread queued behind each other.
//!
//! Fixed, not a thread per launch: every thread's stack is one more mapping each `fork` copies.
//! A second pool of the same kind runs the already-healthy probes before first starts.

use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// The launcher threads.
pub struct Launcher {
    jobs: Sender<Job>,
}

impl Launcher {
    /// Start `threads` launcher threads (at least one).
    pub fn start(threads: usize) -> std::io::Result<Launcher> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let inbox = Arc::new(Mutex::new(inbox));
        for n in 0..threads.max(1) {
            let inbox = inbox.clone();
            std::thread::Builder::new()
                .name(format!("launch-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only to take one job, not while it runs.
                        let job = match inbox.lock() {
                            Ok(inbox) => inbox.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Launcher { jobs })
    }

    /// Run `job` on a launcher thread; it comes back when the pool is gone.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Job> {
        self.jobs.send(Box::new(job)).map_err(|e| e.0)
    }
}
