//! Progress of a split, reported through the caller's callback (a UI's progress view, the binary's bar on a
//! terminal). Updates come at phase changes and every [`TICK_ROWS`] rows, so their cost stays out of the
//! copy loop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

impl Progress {
    pub fn new(callback: Option<ProgressCallback>) -> Progress {
        Progress {
            callback,
            phase: std::sync::Mutex::new(String::new()),
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            timings: std::sync::Mutex::new((Vec::new(), Instant::now())),
        }
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
