//! The first start after an upgrade: [`prepare`] splits the legacy database of a data directory once, before
//! the daemon or the server opens its store there. Both call it at start; whichever comes first splits,
//! the other waits (bounded, and visibly) and then opens the result.
//!
//! - No legacy file, or a split already recorded: nothing to do, at the cost of two `stat`s (and, beside a
//!   legacy file, a look at the two owner locks, for a split that recorded itself but has not let go yet).
//! - Otherwise [`split`](crate::split) runs: it takes both owner locks, so a second caller (the peer process
//!   starting at the same moment) finds them held. That caller waits, reporting who holds them, until the
//!   split is recorded and the splitter has let go of them (its locks say they are a split's), then returns;
//!   if the holder goes away without recording it (killed), the waiter takes over and splits itself.
//!   `kill -9` at any point leaves nothing taken for done: the next call cleans up and splits again.
//! - A legacy file the split refuses is a typed error for both processes, with the remedy; nothing is
//!   created, and no owner creates an empty store beside it (store-core refuses that on its own).
//! - A split of the data directory interrupted by a kill (recorded as under way: `store_core::conversion`)
//!   is taken up first, with the legacy file it was splitting wherever that is (given to `migrate-split`
//!   from outside the data directory, say): its outputs not yet in place are put in place, or it splits
//!   again. Until then no owner creates an empty store there.
//! - After a completed split the legacy file stays where it is, untouched, and is never split again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use store_core::{ErrorKind, LockHolder, LockState, OwnerLock, conversion};

use crate::report::Report;
use crate::{Options, Outcome, ProgressCallback, Result, SplitError, SplitProgress};

/// How long a caller waits for a split another process runs, unless told otherwise: a 1 GB legacy file
/// splits in well under a minute.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(600);

/// How [`prepare`] runs.
#[derive(Clone)]
pub struct UpgradeOptions {
    /// The legacy database; `None` means `<data dir>/legacy.db`.
    pub legacy: Option<PathBuf>,
    /// The longest to wait for another process's split before giving up with `Locked`. With a [`stop`](Self::stop)
    /// flag, the time that process spends stopped (Ctrl-Z, SIGSTOP) is not counted: only someone continuing
    /// it, or the flag, ends such a wait.
    pub max_wait: Duration,
    /// Receives what the upgrade is doing (splitting, with progress; or waiting, and for whom), for a UI.
    pub on_event: Option<UpgradeCallback>,
    /// The key of the data directory: the split's outputs are encrypted with it (see [`Options::key`]).
    pub key: Option<store_core::Key>,
    /// Set it (a SIGTERM handler's flag) and a wait for another process's split gives up within 50 ms, and a
    /// split this process runs at its next batch of rows or phase (see [`Options::stop`]), with
    /// [`store_core::Error::Stopped`]: nothing is put in place, and the next start splits.
    pub stop: Option<Arc<AtomicBool>>,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        UpgradeOptions {
            legacy: None,
            max_wait: DEFAULT_MAX_WAIT,
            on_event: None,
            key: None,
            stop: None,
        }
    }
}

impl std::fmt::Debug for UpgradeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeOptions")
            .field("legacy", &self.legacy)
            .field("max_wait", &self.max_wait)
            .field("on_event", &self.on_event.as_ref().map(|_| "<callback>"))
            .field("key", &self.key)
            .field("stop", &self.stop)
            .finish()
    }
}

/// The callback that receives [`UpgradeEvent`]s. Called on the upgrading thread: keep it short.
pub type UpgradeCallback = Arc<dyn Fn(&UpgradeEvent) + Send + Sync>;

/// What an upgrade in progress is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum UpgradeEvent {
    /// This process splits the legacy file.
    Splitting(SplitProgress),
    /// Another process holds the data directory (splitting it, most likely): this one waits. `holder_stopped`:
    /// that process is stopped (Ctrl-Z, SIGSTOP, a debugger), so the wait lasts until someone continues it
    /// (or, for a caller with no stop flag, until `max_wait`); said, with what continues it, rather than "in
    /// progress" for ten minutes.
    Waiting {
        holder: Option<LockHolder>,
        waited_ms: u64,
        holder_stopped: bool,
    },
}

impl std::fmt::Display for UpgradeEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeEvent::Splitting(p) => write!(
                f,
                "upgrading: splitting the legacy database ({}, {} of {} rows)",
                p.phase, p.rows_done, p.rows_total
            ),
            UpgradeEvent::Waiting {
                holder,
                waited_ms,
                holder_stopped,
            } => {
                let by = holder.as_ref().map_or("another process".to_string(), |h| h.to_string());
                let waited = waited_ms / 1000;
                match (holder, holder_stopped) {
                    (Some(h), true) => write!(
                        f,
                        "upgrading: split in progress by {by}, which is stopped (Ctrl-Z, SIGSTOP or a debugger): \
                         waiting until it is continued (`kill -CONT {}`) (waited {waited} s)",
                        h.pid
                    ),
                    _ => write!(f, "upgrading: split in progress by {by} (waited {waited} s)"),
                }
            }
        }
    }
}

/// What [`prepare`] found or did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Upgrade {
    /// No legacy database in the data directory: nothing to split.
    NoLegacy,
    /// The split was done before (recorded in the data directory).
    AlreadyDone,
    /// This process split the legacy database now.
    Split(Box<Report>),
    /// Another process split it while this one waited.
    SplitByPeer { waited_ms: u64 },
}

/// Splits `data_dir`'s legacy database if it has one that was never split; see the module documentation.
/// Call it at start, before opening a store there.
pub fn prepare(data_dir: &Path, options: &UpgradeOptions) -> Result<Upgrade> {
    // A split of the data directory that a kill interrupted is finished (or redone) first, with the legacy
    // file it was splitting, wherever that is.
    let interrupted = conversion::in_progress(data_dir);
    let legacy = options
        .legacy
        .clone()
        .or_else(|| interrupted.as_ref().map(|run| run.predecessor.clone()))
        .unwrap_or_else(|| data_dir.join(activity_store::schema::LEGACY.file_name));
    if std::fs::symlink_metadata(&legacy).is_err() {
        return Ok(Upgrade::NoLegacy);
    }
    // A split recorded by a peer that has not let go of the directory yet is waited for below, as one in
    // progress: this caller's open would be refused by the peer's lock.
    if interrupted.is_none()
        && (conversion::recorded(data_dir).is_some()
            || crate::adopt_recorded_split(&legacy, data_dir, options.key.as_ref())?)
        && !held_by_a_split(data_dir)
    {
        return Ok(Upgrade::AlreadyDone);
    }
    let tell = |event: UpgradeEvent| {
        if let Some(on_event) = &options.on_event {
            on_event(&event);
        }
    };
    let progress: Option<ProgressCallback> = options.on_event.as_ref().map(|on_event| {
        let on_event = on_event.clone();
        Arc::new(move |p: &SplitProgress| on_event(&UpgradeEvent::Splitting(p.clone()))) as ProgressCallback
    });
    let split_options = Options {
        progress,
        key: options.key.clone(),
        stop: options.stop.clone(),
        ..Options::default()
    };
    let started = Instant::now();
    let mut waited = false;
    let mut last_told: Option<Instant> = None;
    // The time waited while the holder was stopped, which does not count toward `max_wait` for a caller that
    // can end the wait (a stop flag): a daemon failing there was restarted into the same wait by its
    // supervisor every `max_wait`, for as long as nobody continued the holder.
    let mut stopped_for = Duration::ZERO;
    let mut last_look = Instant::now();
    loop {
        // While a peer holds the directory, do not start a split (it would hash the whole legacy file
        // before finding the locks taken): ask the locks, then wait.
        let waited_ms = started.elapsed().as_millis() as u64;
        let outcome = match held_by(data_dir) {
            Some(holder) => Err(SplitError::Store(store_core::Error::Locked {
                path: activity_store::SCHEMA.path_in(data_dir),
                holder,
            })),
            // Recorded by a peer that has let go since: done, without a split run to find it so (which reads
            // the whole legacy file for its sha256).
            None if conversion::recorded(data_dir).is_some() && conversion::in_progress(data_dir).is_none() => {
                return Ok(Upgrade::SplitByPeer { waited_ms });
            }
            None => crate::split(&legacy, data_dir, &split_options),
        };
        match outcome {
            Ok(report) => {
                return Ok(match report.outcome {
                    // Found done: by a peer while this process waited, or before it started.
                    Outcome::AlreadySplit if waited => Upgrade::SplitByPeer { waited_ms },
                    Outcome::AlreadySplit => Upgrade::AlreadyDone,
                    // Split here (also after a peer that held the directory went away without finishing).
                    _ => Upgrade::Split(Box::new(report)),
                });
            }
            Err(e) if e.kind() == ErrorKind::Locked => {
                waited = true;
                // Done once recorded and let go of. The peer records its split while it holds both locks and
                // lets go an instant later, an instant a busy machine stretches past the owner's open's grace
                // (60 ms): returning at the record alone, this caller's open was refused by the peer's lock.
                if conversion::recorded(data_dir).is_some()
                    && conversion::in_progress(data_dir).is_none()
                    && !held_by_a_split(data_dir)
                {
                    return Ok(Upgrade::SplitByPeer { waited_ms });
                }
                let holder = e.locked_by().cloned();
                let holder_stopped = holder.as_ref().is_some_and(|h| store_core::process::stopped(h.pid));
                if holder_stopped && options.stop.is_some() {
                    stopped_for += last_look.elapsed();
                }
                last_look = Instant::now();
                if started.elapsed().saturating_sub(stopped_for) >= options.max_wait {
                    return Err(e);
                }
                if options.stop.as_ref().is_some_and(|stop| stop.load(Ordering::SeqCst)) {
                    let by = holder
                        .as_ref()
                        .map_or("another process".to_string(), LockHolder::to_string);
                    let during = format!("waiting for the split of {} run by {by}", data_dir.display());
                    return Err(SplitError::Store(store_core::Error::Stopped {
                        path: data_dir.to_path_buf(),
                        during,
                    }));
                }
                // Said once the holder is known, then once a second. An owner writes its pid an instant
                // after it takes the lock, so a look in between finds no pid: the next look (50 ms on)
                // names it. A holder still unnamed after a second (one that never records its pid) is
                // said as "another process".
                let due = match last_told {
                    None => holder.is_some() || started.elapsed() >= Duration::from_secs(1),
                    Some(t) => t.elapsed() >= Duration::from_secs(1),
                };
                if due {
                    tell(UpgradeEvent::Waiting {
                        holder,
                        waited_ms,
                        holder_stopped,
                    });
                    last_told = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a split (of this build or a later one) holds an owner lock of `data_dir` right now
/// ([`store_core::LockHolder::converting`]).
fn held_by_a_split(data_dir: &Path) -> bool {
    [&activity_store::SCHEMA, &config_store::SCHEMA]
        .into_iter()
        .any(|schema| {
            matches!(
                OwnerLock::probe(&schema.path_in(data_dir)),
                Ok(LockState::Held { holder: Some(h) }) if h.converting
            )
        })
}

/// Who holds an owner lock of `data_dir` right now (the outer `Option`: someone does; the inner: their pid,
/// when they recorded it).
fn held_by(data_dir: &Path) -> Option<Option<LockHolder>> {
    [&activity_store::SCHEMA, &config_store::SCHEMA]
        .into_iter()
        .find_map(|schema| match OwnerLock::probe(&schema.path_in(data_dir)) {
            Ok(LockState::Held { holder }) => Some(holder),
            _ => None,
        })
}
