//! The conversion: legacy rows streamed into two fresh outputs, counted, verified, closed in WAL mode.
//!
//! The outputs are created by the stores' own migration engines (`OwnerConnection::open` with
//! `activity_store::SCHEMA` / `config_store::SCHEMA`), so their schema is exactly a fresh store's. Then:
//! - loaded unsynced, activity.db without a journal (see [`LoadPosture`]: temporary files, fsynced after
//!   their last connection closed, before they are put in place): one big transaction per table writes each page once, where WAL would
//!   write it twice (WAL, then checkpoint);
//! - the schema's indexes (and triggers) are dropped before the load and re-created afterwards with their
//!   exact SQL read from `sqlite_schema`, building each b-tree once instead of inserting into it row by row
//!   (<https://sqlite.org/lang_createindex.html>); UNIQUE constraints keep their automatic indexes, which
//!   catch legacy duplicates while loading. An encrypted output keeps its indexes through the load (building
//!   them afterwards would sort every key in memory: see [`open_output`]);
//! - every legacy row is read once, in key order, inside one read transaction (one snapshot), with bounded
//!   memory whatever the file size (see [`copy`]); dangling references are counted as rows go in;
//! - AUTOINCREMENT counters are carried over and raised past every id the legacy file references, so a
//!   dangling reference can never come to name a new row;
//! - the legacy file's sha256 and `quick_check` ([`crate::legacy::Checks`]) on a second thread while the
//!   indexes are built: building them keeps one core busy, and the checks take about half of that time;
//! - verification before anything is put in place: `legacy = copied + rejected` per table, a digest of the
//!   values inserted equal to a digest of the rows read back from the file through a separate read-only
//!   connection, `quick_check` and `foreign_key_check` on each output.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use store_core::{ErrorKind, OwnerConnection, Provenance, Schema, SqliteResultExt};

use crate::copy;
use crate::digest::RowDigest;
use crate::error::{Result, SplitError};
use crate::kept_ids::KeptIds;
use crate::legacy::{LegacyFile, legacy_error};
use crate::progress::Progress;
use crate::queries::{self, TABLES, Table, Target};
use crate::rejects::RejectsFile;
use crate::report::TableCounts;
use crate::verify;

/// How an output is loaded: its journal and its page cache.
///
/// The outputs are temporary files until verified, so they are loaded without fsyncs
/// (`synchronous=OFF`), and activity.db, whose copy never relies on a rollback (a failed statement fails
/// the split), without a journal (`journal_mode=OFF`): each page is written once, where a rollback journal
/// (or a WAL) would write it twice. A crash or power loss mid-load leaves a damaged temporary file that
/// nothing ever opens as a database: the next run removes every `.split-tmp-*` file and starts over. The
/// finished file is fsynced after its last connection closed and before it is renamed into place (see
/// [`close_in_wal`]; an earlier fsync, [`Writeback`], only moves most of that writing to the time the
/// indexes are built), so what is put in place is durable. This is not the rule "never
/// `synchronous=OFF` or `journal_mode=OFF` on a database a user keeps" broken: no user database is ever
/// open in that mode, and the user's files are only ever whole, synced ones (docs/sqlite-hazards.md,
/// "Durability"). config.db keeps a rollback journal: its rows are inserted one by one, and a row that
/// fails a constraint is rolled back alone.
#[derive(Debug, Clone, Copy)]
struct LoadPosture {
    journal_mode: &'static str,
    /// Page cache (KiB). Index builds sort within it before spilling to temporary files.
    cache_kib: i64,
}

/// activity.db: the big one. A larger cache was measured no faster on a 1 GB legacy file (the index
/// builds write as much as they sort) and costs memory: with this one, the legacy, checking and verifying
/// connections and the copy's channel, a split of that file peaks at about 75 MB resident (52 MB with one
/// malloc arena, as the `migrate-split` command runs: see its `main.rs`).
const ACTIVITY_LOAD: LoadPosture = LoadPosture {
    journal_mode: "off",
    cache_kib: 16 * 1024,
};

/// config.db: a few thousand rows.
const CONFIG_LOAD: LoadPosture = LoadPosture {
    journal_mode: "delete",
    cache_kib: 4 * 1024,
};

/// Where a conversion writes.
#[derive(Debug, Clone)]
pub(crate) struct OutputPaths {
    pub activity: PathBuf,
    pub config: PathBuf,
    pub rejects: PathBuf,
}

/// A finished conversion: both files closed, in WAL mode, verified and fsynced, not yet in place.
#[derive(Debug)]
pub(crate) struct Conversion {
    pub tables: BTreeMap<String, TableCounts>,
    pub rejects_file: Option<PathBuf>,
    /// The legacy file's sha256, as the provenance records give it.
    pub sha256: String,
    /// Output tables that have handed out the largest id SQLite allows (a legacy row holds it), as
    /// `file's table`: no row can be added to them.
    pub out_of_ids: Vec<String>,
}

/// The detail of the `split` provenance record both outputs carry: the split id and the counts (never a
/// settings value).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct SplitDetail {
    pub split_id: String,
    pub tables: BTreeMap<String, TableCounts>,
}

/// An output being loaded.
struct Output {
    conn: OwnerConnection,
    /// Indexes and triggers (`sqlite_schema.type`, name, exact SQL), dropped for the load.
    derived: Vec<(String, String, String)>,
    /// The fsync of the loaded rows, started once they are all written (see [`Writeback`]). Declared after
    /// `conn`: its descriptor closes only after SQLite's connection did.
    writeback: Writeback,
}

impl Output {
    fn path(&self) -> &Path {
        self.conn.path()
    }

    fn err(&self, e: rusqlite::Error) -> SplitError {
        SplitError::Store(self.conn.error(e))
    }
}

/// Converts `legacy` into the files named by `paths`, which must not exist.
pub(crate) fn convert(
    legacy: &LegacyFile,
    paths: &OutputPaths,
    split_id: &str,
    progress: &Progress,
    key: Option<&store_core::Key>,
) -> Result<Conversion> {
    progress.phase("creating the outputs");
    progress.go_on()?;
    let mut activity = open_output(&paths.activity, &activity_store::SCHEMA, ACTIVITY_LOAD, key)?;
    let mut config = open_output(&paths.config, &config_store::SCHEMA, CONFIG_LOAD, key)?;
    let mut rejects = RejectsFile::new(&paths.rejects);

    // One read transaction: every count and row below comes from the same snapshot.
    legacy
        .conn
        .execute_batch("BEGIN DEFERRED")
        .map_err(|e| legacy_error(&legacy.path, e))?;
    let mut sequences = legacy_sequences(legacy)?;

    // A damaged legacy file may fail the copy in any way (or not at all: see `Checks::structure`); if the
    // copy fails, the file's own check says more, when it finds damage. A stop asked for is not a failure
    // that damage would explain: said as it is, at once.
    let Copied {
        mut counts,
        digests,
        kept,
    } = copy_tables(
        legacy,
        &mut sequences,
        &mut activity,
        &mut config,
        &mut rejects,
        progress,
    )
    .or_else(|e| match e.kind() {
        ErrorKind::Stopped => Err(e),
        _ => damage_first(legacy.checks.structure(), Err(e)),
    })?;
    legacy
        .conn
        .execute_batch("COMMIT")
        .map_err(|e| legacy_error(&legacy.path, e))?;
    // Every row is written (to the OS): the disk takes them while the indexes are built and checked.
    for out in [&mut activity, &mut config] {
        out.writeback.start();
    }

    // Building activity.db's indexes keeps one core busy: the legacy file's two reads run on the other
    // (for a 1 GB file, about 1.5 s beside the 3.5 s of the indexes and running totals).
    let checks = &legacy.checks;
    let (checked, built) = std::thread::scope(|scope| {
        let checking = scope.spawn(|| checks.run(progress));
        progress.phase("building indexes");
        let handles = [&config, &activity].map(|out| out.conn.conn().get_interrupt_handle());
        let built = progress.interruptible(&handles, || {
            finish_load(&mut config, Target::Config, &sequences, progress)
                .and_then(|()| finish_load(&mut activity, Target::Activity, &sequences, progress))
        });
        progress.phase("finishing the legacy file's checks");
        let checked = checking.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (checked, built)
    });
    damage_first(checked, built)?;
    let untracked: Vec<&str> = kept.iter().filter(|(_, k)| k.overflowed()).map(|(t, _)| *t).collect();
    if !untracked.is_empty() {
        progress.phase("counting dangling references");
        count_dangling(&config, &activity, &paths.config, &untracked, &mut counts)?;
    }

    let sha256 = legacy.checks.sha256()?.to_string();
    let detail = SplitDetail {
        split_id: split_id.to_string(),
        tables: counts.clone(),
    };
    let record = Provenance {
        source_path: Some(
            std::fs::canonicalize(&legacy.path)
                .unwrap_or_else(|_| legacy.path.clone())
                .display()
                .to_string(),
        ),
        source_sha256: Some(sha256.clone()),
        source_version: Some(i64::from(legacy.version)),
        detail: Some(serde_json::to_string(&detail).expect("counts serialise")),
        ..Provenance::now("split")
    };
    for out in [&mut config, &mut activity] {
        out.conn.record_provenance(&record)?;
        // Its lineage from the split on, not from its owner's first open: a backup taken in between is
        // then told as this file's (by path alone, a rotation took it for the file later at that path).
        out.conn.write(|tx| Provenance::ensure_lineage(tx))?;
    }

    progress.phase("verifying");
    progress.go_on()?;
    let outputs = [(&config, Target::Config), (&activity, Target::Activity)].map(|(out, target)| verify::Finished {
        path: out.path(),
        schema: out.conn.schema(),
        tables: digests.iter().filter(|(t, _, _)| t.target == target).collect(),
    });
    verify::verify_outputs(&outputs, key, progress)?;
    let mut out_of_ids = Vec::new();
    for out in [&config, &activity] {
        let tables = out.conn.read(store_core::restore::tables_out_of_ids)?;
        out_of_ids.extend(tables.iter().map(|t| format!("{}'s {t}", out.conn.schema().file_name)));
    }

    progress.phase("closing");
    progress.go_on()?;
    for out in [config, activity] {
        close_in_wal(out, key)?;
    }
    let rejects_file = rejects.finish()?;
    Ok(Conversion {
        tables: counts,
        rejects_file,
        sha256,
        out_of_ids,
    })
}

/// The outcome of work on the legacy file beside the file's own check of it: a refusal of the file (damage
/// `quick_check` found) says more than any failure of the work, which may be that damage's consequence;
/// then the work's failure, then the check's other failures (reading the file).
fn damage_first<T>(checked: Result<()>, work: Result<T>) -> Result<T> {
    match checked {
        Err(refusal @ SplitError::Refused { .. }) => Err(refusal),
        checked => {
            let done = work?;
            checked.map(|()| done)
        }
    }
}

/// What copying every table produced: each table's counts, what was inserted in it (rows and digest), and
/// the kept ids of the parent tables.
struct Copied {
    counts: BTreeMap<String, TableCounts>,
    digests: Vec<(&'static Table, u64, RowDigest)>,
    kept: HashMap<&'static str, KeptIds>,
}

/// Copies every legacy table (in the caller's read transaction on the legacy file), checking each one's
/// `legacy = copied + rejected`, and raises `sequences` past every id referenced.
fn copy_tables(
    legacy: &LegacyFile,
    sequences: &mut HashMap<String, i64>,
    activity: &mut Output,
    config: &mut Output,
    rejects: &mut RejectsFile,
    progress: &Progress,
) -> Result<Copied> {
    let tables: Vec<&'static Table> = TABLES.iter().filter(|t| legacy.has(t)).collect();
    let mut legacy_counts = HashMap::new();
    for t in &tables {
        let n: i64 = legacy
            .conn
            .query_row(&queries::legacy_count(t), [], |r| r.get(0))
            .map_err(|e| legacy_error(&legacy.path, e))?;
        legacy_counts.insert(t.name, n as u64);
    }
    progress.set_total(legacy_counts.values().sum());
    let mut copied = Copied {
        counts: BTreeMap::new(),
        digests: Vec::new(),
        kept: HashMap::new(),
    };
    for table in tables {
        progress.phase(&format!("copying {}", table.name));
        progress.go_on()?;
        let out = match table.target {
            Target::Activity => &mut *activity,
            Target::Config => &mut *config,
        };
        let mut run = copy::copy_table(
            table,
            copy::Endpoints {
                legacy: &legacy.conn,
                legacy_path: &legacy.path,
                version: legacy.version,
                output: &mut out.conn,
                rejects,
                kept: &mut copied.kept,
                progress,
            },
        )?;
        run.counts.legacy = legacy_counts[table.name];
        if run.counts.copied + run.counts.rejected != run.counts.legacy {
            return Err(SplitError::Verification {
                path: out.path().to_path_buf(),
                detail: format!(
                    "{}: the legacy file has {} rows, {} were copied and {} rejected",
                    table.name, run.counts.legacy, run.counts.copied, run.counts.rejected
                ),
            });
        }
        for (parent, id) in run.max_refs {
            let seq = sequences.entry(parent.to_string()).or_insert(0);
            *seq = (*seq).max(id);
        }
        copied.counts.insert(table.name.to_string(), run.counts);
        copied.digests.push((table, run.counts.copied, run.digest));
    }
    Ok(copied)
}

/// Creates an output through its store's migration engine, then readies it for the bulk load.
fn open_output(
    path: &Path,
    schema: &'static Schema,
    posture: LoadPosture,
    key: Option<&store_core::Key>,
) -> Result<Output> {
    // A temporary file: its opens are not the data directory's database's.
    let options = store_core::OpenOptions {
        temporary_file: true,
        key: key.cloned(),
        ..Default::default()
    };
    let conn = OwnerConnection::open_with(path, schema, &options)?;
    let c = conn.conn();
    // Only on this temporary file, until it is closed (see LoadPosture). An encrypted output's sorts stay in
    // memory, so it sorts no index (see below) nor its running totals (`activity_store::rebuild_totals`).
    store_core::conn_ext::ready_for_bulk_load(c, path, posture.journal_mode, key.is_some())?;
    // No sorter helper threads (https://sqlite.org/pragma.html#pragma_threads): while the indexes are
    // built, the second core runs the legacy file's checks (see `convert`). A helper beside them made the
    // split no faster and added 15-30 MB to its peak memory (measured on a 1 GB legacy file).
    let cache = posture.cache_kib;
    c.execute_batch(&format!("PRAGMA cache_size = -{cache}; PRAGMA threads = 0"))
        .at(path)?;
    let derived: Vec<(String, String, String)> = c
        .prepare(queries::OUTPUT_DERIVED)
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
        .at(path)?;
    // An encrypted output keeps its indexes through the load, each row entered as it is inserted: built
    // afterwards, each would sort every key, in memory (above), 314 MB for a 1 GB legacy file and growing
    // with it. Kept, memory stays the page cache's (69 MB), and the split is as fast when rows come in key
    // order, as a daemon writes them (14.3 s vs 16.5 s); rows far out of order make it slower (199 s, that
    // file's events shuffled), never bigger. Measured: SECURITY.md, "Temporary files".
    let derived = derived
        .into_iter()
        .filter(|(kind, _, _)| kind != "index" || key.is_none())
        .collect();
    let writeback = Writeback::open(path)?;
    let mut out = Output {
        conn,
        derived,
        writeback,
    };
    let drops: Vec<String> = out
        .derived
        .iter()
        .map(|(kind, name, _)| queries::drop_derived(kind, name))
        .collect();
    out.conn.write(|tx| {
        for sql in &drops {
            tx.execute_batch(sql)?;
        }
        Ok(())
    })?;
    Ok(out)
}

/// The legacy AUTOINCREMENT counters (empty when the file never had one).
fn legacy_sequences(legacy: &LegacyFile) -> Result<HashMap<String, i64>> {
    let err = |e| legacy_error(&legacy.path, e);
    let has: bool = legacy
        .conn
        .query_row(queries::HAS_SEQUENCES, [], |r| r.get(0))
        .map_err(err)?;
    if !has {
        return Ok(HashMap::new());
    }
    let mut stmt = legacy.conn.prepare(queries::LEGACY_SEQUENCES).map_err(err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?)))
        .map_err(err)?;
    let mut out = HashMap::new();
    for row in rows {
        let (name, seq) = row.map_err(err)?;
        if let Some(seq) = seq {
            let e = out.entry(name).or_insert(seq);
            *e = (*e).max(seq);
        }
    }
    Ok(out)
}

/// After the load: AUTOINCREMENT counters, then the indexes (exact SQL), then activity.db's running totals
/// and its triggers, in one transaction.
fn finish_load(out: &mut Output, target: Target, sequences: &HashMap<String, i64>, progress: &Progress) -> Result<()> {
    let counters: Vec<(&'static str, i64)> = TABLES
        .iter()
        .filter(|t| t.target == target && t.key == queries::Key::Id)
        .filter_map(|t| sequences.get(t.name).filter(|s| **s > 0).map(|s| (t.name, *s)))
        .collect();
    let derived = out.derived.clone();
    let (indexes, triggers): (Vec<_>, Vec<_>) = derived.iter().partition(|(kind, _, _)| kind == "index");
    out.conn.write(|tx| {
        for (name, seq) in &counters {
            tx.execute(queries::RAISE_SEQUENCE, rusqlite::params![name, seq])?;
            tx.execute(queries::INSERT_SEQUENCE, rusqlite::params![name, seq])?;
        }
        if target == Target::Activity {
            tx.execute(queries::MARK_ENDED_SESSIONS, [])?;
        }
        for (_, _, sql) in &indexes {
            tx.execute_batch(sql)?;
        }
        if target == Target::Activity {
            // The sessions were loaded without the triggers that keep the running totals reports read:
            // computed once here, from the loaded sessions (sorted where temporary storage is on disk, as for a
            // plaintext output; summed in the order of the project index just built, nothing sorted, where
            // it is in memory, as for an encrypted one), then the triggers are back for the daemon's writes.
            progress.phase("computing the running totals");
            activity_store::rebuild_totals(tx)?;
        }
        for (_, _, sql) in &triggers {
            tx.execute_batch(sql)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Counts, with SQL over the loaded outputs, kept rows whose plain (unenforced) reference names no row of
/// the outputs, for parents whose ids were too large to track while copying (see [`KeptIds`]).
fn count_dangling(
    config: &Output,
    activity: &Output,
    config_path: &Path,
    untracked_parents: &[&str],
    counts: &mut BTreeMap<String, TableCounts>,
) -> Result<()> {
    let c = activity.conn.conn();
    let attached = c
        .execute(
            queries::ATTACH_CONFIG,
            [store_core::files::sqlite_path(config_path).to_string_lossy()],
        )
        .map_err(|e| activity.err(e));
    attached?;
    let outcome = (|| -> Result<()> {
        for table in TABLES {
            let Some(entry) = counts.get_mut(table.name) else {
                continue;
            };
            for r in table
                .references
                .iter()
                .filter(|r| !r.enforced && untracked_parents.contains(&r.parent))
            {
                let parent = queries::table(r.parent).expect("references name known tables");
                let (conn, schema) = match (table.target, parent.target) {
                    (Target::Config, _) => (config, "main"),
                    (Target::Activity, Target::Activity) => (activity, "main"),
                    (Target::Activity, Target::Config) => (activity, queries::CONFIG_ATTACHED),
                };
                let n: i64 = conn
                    .conn
                    .conn()
                    .query_row(&queries::dangling_count(table, r, schema), [], |row| row.get(0))
                    .map_err(|e| conn.err(e))?;
                entry.dangling += n as u64;
            }
        }
        Ok(())
    })();
    c.execute_batch(queries::DETACH_CONFIG).map_err(|e| activity.err(e))?;
    outcome
}

/// Switches a loaded output to WAL (what its owner expects), checkpoints it, closes it, and checks the closed
/// file: WAL in its header, no `-wal` left (the last connection checkpoints and removes it). An encrypted output's
/// header is ciphertext: its journal mode is read back through a new connection keyed with `key`. Then the
/// fsync of the closed file (it was loaded unsynced, see [`LoadPosture`]; most of it reached the disk
/// already, see [`Writeback`]), before anything renames it into place.
fn close_in_wal(out: Output, key: Option<&store_core::Key>) -> Result<()> {
    let path = out.path().to_path_buf();
    let mode: String = out
        .conn
        .conn()
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .at(&path)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SplitError::Store(store_core::Error::PragmaRejected {
            path,
            pragma: "journal_mode",
            wanted: "wal".into(),
            got: mode,
        }));
    }
    // The owner connection's close runs this TRUNCATE checkpoint and drops its error (a close cannot fail),
    // and SQLite's close then leaves the -wal and -shm behind. Run here, its error is seen: on a disk with
    // no room for the -shm (the index of the -wal, 32 KiB), the write that failed, with the free-space
    // remedy, instead of a -wal "left after closing" said as a failed verification.
    store_core::checkpoint::checkpoint(out.conn.conn(), store_core::checkpoint::CheckpointMode::Truncate).at(&path)?;
    let Output { conn, writeback, .. } = out;
    drop(conn);
    let marked_wal = match key {
        // The last connection to close removes the -wal and -shm it creates.
        Some(key) => {
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW;
            let conn = rusqlite::Connection::open_with_flags(store_core::files::sqlite_path(&path), flags).at(&path)?;
            store_core::key::apply(&conn, &path, Some(key))?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| store_core::key::error_at(&path, Some(key), e))?;
            conn.close()
                .map_err(|(_, e)| store_core::Error::from_sqlite(&path, e))?;
            mode.eq_ignore_ascii_case("wal")
        }
        None => {
            // No connection to the file is open any more: reading it with std::fs is safe now.
            let mut header = [0u8; 100];
            std::fs::File::open(&path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
                .map_err(|e| SplitError::io(&path, "read the header of", e))?;
            header[18] == 2 && header[19] == 2
        }
    };
    if !marked_wal {
        return Err(SplitError::Verification {
            path,
            detail: "the closed file is not marked WAL in its header".into(),
        });
    }
    let [wal, shm, journal] = store_core::files::sidecars(&path);
    if wal.exists() || journal.exists() {
        return Err(SplitError::Verification {
            path,
            detail: "a -wal or -journal file remained after closing".into(),
        });
    }
    // An -shm holds no data (it is an index into the -wal, rebuilt on the next open).
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(|e| SplitError::io(&shm, "remove", e))?;
    }
    writeback.finish(&path)
}

/// An fsync of a loaded output started early, on a thread of its own, while the indexes are built and
/// the file is verified: most of the file reaches the disk meanwhile, and the fsync after its last
/// connection closed (which is what makes the file durable, see [`close_in_wal`]) has little left to
/// write. The descriptor is opened while SQLite's connection is open and closed only after that
/// connection is (the thread shares it, and is joined first): closing a descriptor of a file drops every
/// POSIX lock this process holds on it
/// (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks_canceled_by_a_separate_thread_doing_close_).
struct Writeback {
    file: Arc<std::fs::File>,
    syncing: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Writeback {
    fn open(path: &Path) -> Result<Writeback> {
        Ok(Writeback {
            file: Arc::new(store_core::files::open_private_existing(path)?),
            syncing: None,
        })
    }

    fn start(&mut self) {
        let file = Arc::clone(&self.file);
        self.syncing = Some(std::thread::spawn(move || file.sync_data()));
    }

    /// Waits for the early fsync, if started (its failure fails the split: after a failed fsync the file's
    /// state on disk is unknown), then fsyncs the file, now that nothing writes it, and closes it.
    fn finish(mut self, path: &Path) -> Result<()> {
        if let Some(syncing) = self.syncing.take() {
            syncing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                .map_err(|e| SplitError::io(path, "fsync", e))?;
        }
        self.file.sync_all().map_err(|e| SplitError::io(path, "fsync", e))
    }
}

impl Drop for Writeback {
    /// A split that failed meanwhile: the descriptor is closed only once the fsync returned.
    fn drop(&mut self) {
        if let Some(syncing) = self.syncing.take() {
            let _ = syncing.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set (to a directory) in the child process of the test below.
    const CLOSE_CHILD: &str = "MIGRATE_SPLIT_TEST_CLOSE_IN_WAL_CHILD";

    /// Child role (does nothing unless [`CLOSE_CHILD`] is set): a loaded config.db output in the directory
    /// given, closed with no file allowed to grow past 16 KiB (`RLIMIT_FSIZE`, `SIGXFSZ` ignored, as
    /// tests/drill_disk_full.rs limits its children): the database and the WAL switch's journal (4.5 KiB)
    /// are written below that, the -shm (32 KiB) cannot be, as on a disk with that much room left. Prints
    /// the outcome.
    #[test]
    fn close_in_wal_child() {
        let Some(dir) = std::env::var_os(CLOSE_CHILD) else {
            return;
        };
        let path = Path::new(&dir).join("config.db");
        let out = open_output(&path, &config_store::SCHEMA, CONFIG_LOAD, None).unwrap();
        out.conn
            .conn()
            .execute("INSERT INTO projects (id, name) VALUES (1, 'p')", [])
            .unwrap();
        // SAFETY: plain libc calls on this process, the child of the test below, which runs only this test.
        unsafe {
            assert_ne!(libc::signal(libc::SIGXFSZ, libc::SIG_IGN), libc::SIG_ERR);
            let limit = libc::rlimit {
                rlim_cur: 16 * 1024,
                rlim_max: 16 * 1024,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        }
        match close_in_wal(out, None) {
            Ok(()) => println!("\noutcome: closed"),
            Err(e) => println!("\noutcome: {:?}: {e}", e.kind()),
        }
    }

    /// Before, an output closed on a disk with no room for its -shm failed as "verification of ... failed: a
    /// -wal or -journal file remained after closing ... if it repeats, report it": the owner connection's
    /// close ran the checkpoint that failed and dropped its error. Now it is the failed write with its
    /// remedy, as every other full disk of the split is.
    #[test]
    fn an_output_closed_with_no_room_for_its_wal_index_is_a_failed_write_with_the_free_space_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "convert::tests::close_in_wal_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CLOSE_CHILD, dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        let outcome = stdout
            .lines()
            .find_map(|l| l.split_once("outcome: ").map(|(_, o)| o))
            .unwrap_or_else(|| panic!("no outcome: {out:?}"));
        let path = dir.path().join("config.db");
        let expected = format!(
            "WriteFailed: {}: the operating system refused a write (disk I/O error (extended code {})). What to do: \
             check free space, quotas and file-size limits (ulimit -f) for {}",
            path.display(),
            rusqlite::ffi::SQLITE_IOERR_SHMSIZE,
            dir.path().display()
        );
        assert!(outcome.starts_with(&expected), "{outcome}");
        assert!(!outcome.contains("remained after closing"), "{outcome}");
    }
}
