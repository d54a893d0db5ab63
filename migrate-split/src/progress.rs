//! Progress of a split, reported through the caller's callback (a UI's progress view, the binary's bar on a
//! terminal). Updates come at phase changes and every [`TICK_ROWS`] rows, so their cost stays out of the
//! copy loop. The same places ask whether the caller's stop flag is set ([`Progress::go_on`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use serde::Serialize;

/// Rows between two progress updates.
pub(crate) const TICK_ROWS: u64 = 4096;

/// Where a split is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SplitProgress {
    /// What it is doing: `copying activity_events`, `building indexes`, `verifying`...
    pub phase: String,
    /// Legacy rows copied so far, and in all.
    pub rows_done: u64,
    pub rows_total: u64,
}

/// The callback that receives [`SplitProgress`] updates. Called on the splitting thread: keep it short.
pub type ProgressCallback = Arc<dyn Fn(&SplitProgress) + Send + Sync>;

/// How long one phase of a split took: where the time went, in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseTime {
    pub phase: String,
    pub seconds: f64,
}

/// The running state behind the callback.
pub(crate) struct Progress {
    callback: Option<ProgressCallback>,
    phase: std::sync::Mutex<String>,
    done: AtomicU64,
    total: AtomicU64,
    /// Phases ended so far, and when the current one started.
    timings: std::sync::Mutex<(Vec<PhaseTime>, Instant)>,
    /// The caller's stop flag, and the path and words of the [`store_core::Error::Stopped`] it ends the run
    /// with.
    stop: Option<(Arc<AtomicBool>, PathBuf, String)>,
}

impl Progress {
    pub fn new(callback: Option<ProgressCallback>) -> Progress {
        Progress {
            callback,
            phase: std::sync::Mutex::new(String::new()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            timings: std::sync::Mutex::new((Vec::new(), Instant::now())),
            stop: None,
        }
    }

    /// Makes [`go_on`](Self::go_on) fail once `stop` is set, with a [`store_core::Error::Stopped`] of `path`
    /// saying the run stopped `during` what.
    pub fn stopped_by(mut self, stop: Option<Arc<AtomicBool>>, path: &Path, during: String) -> Progress {
        self.stop = stop.map(|stop| (stop, path.to_path_buf(), during));
        self
    }

    /// Fails once the caller's stop flag is set: asked where the run can end with nothing left of it but
    /// its temporary outputs (removed as after any failure), at each phase and every [`TICK_ROWS`] rows.
    pub fn go_on(&self) -> crate::Result<()> {
        match &self.stop {
            Some((stop, path, during)) if stop.load(Ordering::SeqCst) => {
                Err(crate::SplitError::Store(store_core::Error::Stopped {
                    path: path.clone(),
                    during: during.clone(),
                }))
            }
            _ => Ok(()),
        }
    }

    /// Runs `work`, interrupting whatever statement the connections of `handles` run (`sqlite3_interrupt`,
    /// https://sqlite.org/c3ref/interrupt.html) once the stop flag is set: a statement that takes seconds
    /// (an index build over a 1 GB file's events: 14 s on a busy machine) ends at once. A run stopped so ends
    /// with the stop's error, whatever the interrupted statement returned.
    pub fn interruptible<T>(
        &self,
        handles: &[rusqlite::InterruptHandle],
        work: impl FnOnce() -> crate::Result<T>,
    ) -> crate::Result<T> {
        let Some((stop, ..)) = &self.stop else {
            return work();
        };
        let done = AtomicBool::new(false);
        let outcome = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    if stop.load(Ordering::SeqCst) {
                        // A connection running nothing ignores it (SQLite's documented no-op).
                        handles.iter().for_each(rusqlite::InterruptHandle::interrupt);
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            });
            let outcome = work();
            done.store(true, Ordering::SeqCst);
            outcome
        });
        self.go_on()?;
        outcome
    }

    /// Ends the current phase and returns every phase's time.
    pub fn finish(&self) -> Vec<PhaseTime> {
        self.end_phase();
        self.timings.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    fn end_phase(&self) {
        let phase = self.phase.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut timings = self.timings.lock().unwrap_or_else(|p| p.into_inner());
        let (ended, since) = &mut *timings;
        if !phase.is_empty() {
            ended.push(PhaseTime {
                phase,
                seconds: since.elapsed().as_secs_f64(),
            });
        }
        *since = Instant::now();
    }

    pub fn set_total(&self, rows: u64) {
        self.total.store(rows, Ordering::Relaxed);
        self.report();
    }

    pub fn phase(&self, what: &str) {
        self.end_phase();
        *self.phase.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
        self.report();
    }

    pub fn inc(&self, rows: u64) {
        self.done.fetch_add(rows, Ordering::Relaxed);
        self.report();
    }

    fn report(&self) {
        if let Some(callback) = &self.callback {
            callback(&SplitProgress {
                phase: self.phase.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                rows_done: self.done.load(Ordering::Relaxed),
                rows_total: self.total.load(Ordering::Relaxed),
            });
        }
    }
}
