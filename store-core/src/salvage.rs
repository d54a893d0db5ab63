//! Salvage: every row of a damaged database that can still be read, copied into a new file at this build's
//! schema, on top of the newest good backup where there is one, then verified. What `sqlite3 .recover` and
//! `.dump` do for a person at a shell, done for a [`Schema`] (see `docs/salvage.md`).
//!
//! # Reading around damage
//! SQLite reads a table through its b-tree (<https://sqlite.org/fileformat2.html#b_tree_pages>): interior pages
//! lead to the leaf pages that hold the rows, in rowid order. A damaged page fails with `SQLITE_CORRUPT` when
//! a cursor enters it, and only then: every other leaf is still reachable by seeking to a rowid it holds. So
//! each table is read in rowid order, in ranges (`WHERE rowid >= ?` `ORDER BY rowid LIMIT n`); when a read
//! fails, the first start past the damage is found by seeking further and further (`+1, +2, +4`, ...) and
//! then bisecting back, and reading resumes there. The rows on both sides of a damaged page are recovered;
//! the rowids between the last row read and the first start that reads again are an unreadable range. Each
//! range is then bisected again (within a budget of probes) for rows a damaged neighbour hid, which also
//! narrows the range to where rows really are.
//!
//! Rows are never read through an index (`NOT INDEXED`): an index page may be damaged while every table page
//! is fine, and a rowid seek uses only the table's own b-tree. `PRAGMA cell_size_check` makes SQLite check
//! each cell's size as it reads a page, so a page whose cells are garbage fails rather than yields garbage
//! (<https://sqlite.org/pragma.html#pragma_cell_size_check>); `PRAGMA writable_schema` (on a read-only
//! connection) lets SQLite read a file shorter than its header says, page by page, instead of refusing it.
//!
//! # What is known lost
//! The rows of an unreadable range are lost, and their number is estimated from the damaged file itself: an
//! index of the table holds one entry per row (rowid included), so when one can be read whole, the rowids it
//! lists inside the unreadable ranges are the rows lost, exactly. Without a readable index the estimate is
//! the number of ids in the ranges, an upper bound that is exact where ids are dense (AUTOINCREMENT ids of a
//! table nothing was deleted from). Which of the two was used is in the report.
//!
//! # Leaves a damaged interior page hides
//! A damaged *interior* page hides every leaf below it from SQLite, though those leaves are intact. When a
//! table still has unreadable ranges, its file is read page by page (`pages`), as SQLite's recover
//! extension (`ext/recover`) does, and a table leaf page is taken only when everything says it is one of this
//! table's lost leaves (see `orphan_rows`). A plaintext file is read from disk; one with a non-empty `-wal`
//! (the file's copy of a page may be older than the WAL's) and an encrypted one through SQLite's pager, which
//! reads the WAL and decrypts (see `DamagedFile::pages`).
//!
//! # What this does not do
//! A file whose first page (the schema) is unreadable yields nothing; a row whose overflow pages are damaged
//! is lost; WITHOUT ROWID tables are read only up to their first damage. It never writes the damaged file.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};
use serde::Serialize;

use crate::check::{self, Column, Declared, quote, table_columns};
use crate::error::{Error, Result, SqliteResultExt};
use crate::files;
use crate::migrate;
use crate::open_database::{OpenOptions, OwnerConnection};
use crate::owner_lock::OwnerLock;
use crate::provenance::{IdRange, Provenance, lineage_of};
use crate::restore::{self, VerifiedBackup};
use crate::schema::Schema;

mod pages;

/// The tables every database carries for the migration engine and its history (see
/// [`BOOKKEEPING_SQL`](crate::BOOKKEEPING_SQL)): they describe the file, not the user's data, so a salvage
/// keeps the output's own and copies none from the damaged file.
pub const BOOKKEEPING_TABLES: [&str; 3] = ["schema_migrations", "reader_compatibility", "provenance"];
/// The provenance event a salvage records in the file it puts in place.
pub const SALVAGE_EVENT: &str = "salvage";
/// Suffix of the temporary file a salvage builds beside the database it replaces (`<name>.salvaging`).
pub const TEMP_SUFFIX: &str = ".salvaging";
/// Rows read, and written in one transaction, at a time: what a salvage holds in memory, and how many commits
/// it makes. Measured on the 1 GB activity.db of docs/salvage.md (6.0M events, no backup): 2000 rows a
/// transaction took 28.4 s and 14.5 MB, 10,000 23.3 s and 18.4 MB, 20,000 no faster (23.5 s) and 27 MB.
pub const DEFAULT_CHUNK_ROWS: usize = 10_000;
/// Seeks each table may spend looking inside its unreadable ranges for rows a damaged page hid. Each is one
/// b-tree descent (a few pages, from the cache): thousands cost milliseconds.
pub const DEFAULT_PROBE_BUDGET: u32 = 4_096;

/// Runs on the finished output just before it is verified; returning `Err` fails the salvage exactly as a
/// failed verification does. Drills use it to inject a failure.
pub type SalvageHook = Arc<dyn Fn(&Connection) -> std::result::Result<(), String> + Send + Sync>;

/// Options for [`salvage_with`].
#[derive(Clone)]
pub struct SalvageOptions {
    pub chunk_rows: usize,
    pub probe_budget: u32,
    /// Fault injection (see [`SalvageHook`]).
    pub before_verify: Option<SalvageHook>,
    /// The key of an encrypted database: the damaged file, the backup and the output are all read and
    /// written with it. Reading goes on around each damaged page, as in a plaintext file; the leaves a
    /// damaged interior page hides are read through SQLite's pager, which decrypts them.
    pub key: Option<crate::key::Key>,
}

impl Default for SalvageOptions {
    fn default() -> Self {
        SalvageOptions {
            chunk_rows: DEFAULT_CHUNK_ROWS,
            probe_budget: DEFAULT_PROBE_BUDGET,
            before_verify: None,
            key: None,
        }
    }
}

impl std::fmt::Debug for SalvageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalvageOptions")
            .field("chunk_rows", &self.chunk_rows)
            .field("probe_budget", &self.probe_budget)
            .field("before_verify", &self.before_verify.as_ref().map(|_| "<hook>"))
            .field("key", &self.key)
            .finish()
    }
}

/// What a salvage put in its output, per table. It matches the output exactly: each table holds
/// `from_backup + salvaged + derived` rows (checked before the output is handed over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalvageReport {
    pub database: &'static str,
    /// The damaged file the rows were read from (once placed: where it was quarantined).
    #[serde(with = "crate::files::lossy_path")]
    pub from: PathBuf,
    /// Its schema version, when its header could be read.
    pub from_version: Option<u32>,
    /// The file built (once placed: the database's own path).
    #[serde(with = "crate::files::lossy_path")]
    pub out: PathBuf,
    /// The verified backup the output started from, if any.
    #[serde(with = "crate::files::lossy_path::option")]
    pub base_backup: Option<PathBuf>,
    /// Its schema version.
    pub base_version: Option<u32>,
    /// The output's schema version: this build's.
    pub version: u32,
    pub tables: BTreeMap<String, TableSalvage>,
    /// What could not be done as usual (a table missing from the damaged file, a column it lacks, rows the
    /// schema refused, a counter it could not read), one sentence each.
    pub notes: Vec<String>,
}

impl SalvageReport {
    /// Rows copied from the damaged file, all tables.
    pub fn salvaged(&self) -> u64 {
        self.tables.values().map(|t| t.salvaged).sum()
    }

    /// Rows that came from the backup, all tables.
    pub fn from_backup(&self) -> u64 {
        self.tables.values().map(|t| t.from_backup).sum()
    }

    /// Rows known lost, all tables.
    pub fn known_lost(&self) -> u64 {
        self.tables.values().map(|t| t.known_lost).sum()
    }

    /// Whether [`known_lost`](Self::known_lost) is an upper bound rather than a count: some table's lost
    /// rows were counted from id ranges ([`TableSalvage::lost_is_upper_bound`]).
    pub fn lost_is_upper_bound(&self) -> bool {
        self.tables.values().any(TableSalvage::lost_is_upper_bound)
    }

    /// `N known lost`, or `at most N lost` when that is an upper bound; then the rows read but refused by
    /// the schema (a child row whose parent was lost), which are not in the output either: said in the
    /// headline, not only in the table and the notes.
    pub fn lost_said(&self) -> String {
        let lost = if self.lost_is_upper_bound() {
            format!("at most {} lost", self.known_lost())
        } else {
            format!("{} known lost", self.known_lost())
        };
        match self.tables.values().map(|t| t.rejected).sum::<u64>() {
            0 => lost,
            refused => format!("{lost}, and {refused} read but refused by the schema (not kept)"),
        }
    }
}

/// [`TableSalvage::known_lost_basis`] when the lost rows were counted from the ids in the unreadable ranges.
const ID_RANGES: &str = "id ranges";

/// What a salvage did with one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableSalvage {
    /// Rows read from the damaged file and written to the output.
    pub salvaged: u64,
    /// Rows the output holds from the backup it started from.
    pub from_backup: u64,
    /// Rows read from the damaged file that the backup holds as they are (same key, same values): nothing
    /// to copy.
    pub already_in_backup: u64,
    /// Rows of the backup that the damaged file holds changed (a session ended, a setting changed after the
    /// backup was taken): the output has the damaged file's values, the newer ones. Counted in
    /// `from_backup`, not `salvaged` (no row is added).
    pub updated: u64,
    /// Rows read from the damaged file that the schema refused (a duplicate key, a parent row that was
    /// lost, a NULL where none may be, a value its column's declared type cannot hold as the application
    /// reads it: see `Declared`): not copied. The first reason is in the report's notes.
    pub rejected: u64,
    /// Rows the damaged file shows existed but that could not be read: see [`known_lost_basis`](Self::known_lost_basis).
    pub known_lost: u64,
    /// How `known_lost` was estimated: `"index <name>"` (the rowids an index of the damaged table lists in
    /// the unreadable ranges: exact), `"id ranges"` (the number of ids in the ranges: an upper bound, exact
    /// when ids are dense), or `None` when nothing was unreadable.
    pub known_lost_basis: Option<String>,
    /// Rowid ranges (inclusive) of the damaged table that could not be read.
    pub unreadable_ranges: Vec<(i64, i64)>,
    /// Rows of a derived table (see [`Schema::derived_tables`]) that the schema's triggers wrote from the
    /// output's other rows, because the damaged file's own copy could not be read whole.
    pub derived: u64,
}

impl TableSalvage {
    /// Whether `known_lost` is an upper bound (counted from id ranges: ids of rows deleted before the damage
    /// count too) rather than exact.
    pub fn lost_is_upper_bound(&self) -> bool {
        self.known_lost > 0 && self.known_lost_basis.as_deref() == Some(ID_RANGES)
    }
}

/// [`salvage_with`] with default options.
pub fn salvage(
    damaged: &Path,
    schema: &'static Schema,
    base: Option<&VerifiedBackup>,
    out: &Path,
) -> Result<SalvageReport> {
    salvage_with(damaged, schema, base, out, &SalvageOptions::default())
}

/// Copies every readable row of `damaged` (a database of `schema`, at this build's version or older) into
/// the new file `out` (which must not exist), at this build's schema version:
/// - without `base`, `out` starts as a fresh database of `schema` and every readable row is copied;
/// - with `base` (a verified backup, at any version this build opens), `out` starts as the backup brought to
///   this build's schema, and the damaged file, the newer of the two, is read over it: a row whose key
///   (the rowid, or a text key) the backup lacks is added; a row the backup holds with other values gets
///   the damaged file's values, by `UPDATE`, so the schema's triggers see the change as the application
///   made it (a session that ended after the backup is ended, and counted once). A row of the backup where
///   the damaged file is unreadable, or that it no longer holds (deleted after the backup), stays as the
///   backup has it; the report's notes count both. While the derived tables are taken whole from the
///   damaged file (they count its deleted rows), a row it no longer holds where it reads is left out
///   instead, so it is not counted twice. Tables of [`Schema::append_only_tables`] are read only
///   past the backup's highest rowid: their rows never change, so the backup's verified copy is kept.
///
/// Only columns both files have (by name) are copied; the others take their defaults. AUTOINCREMENT counters
/// end at least at the highest id the damaged file shows (its `sqlite_sequence`, the rows read, its indexes),
/// so no id is ever used twice. Each chunk of rows is written in one `BEGIN IMMEDIATE` transaction.
///
/// `out` is checked (`integrity_check`, `foreign_key_check`, each table's count against the report) before
/// this returns; on any failure `out` and its sidecars are removed and the error returned. `damaged` is
/// only read. `out` is left a single self-contained file (no `-wal`), fsynced, 0600.
pub fn salvage_with(
    damaged: &Path,
    schema: &'static Schema,
    base: Option<&VerifiedBackup>,
    out: &Path,
    opts: &SalvageOptions,
) -> Result<SalvageReport> {
    if std::fs::symlink_metadata(out).is_ok() {
        return Err(Error::io(
            out,
            "create the salvage output",
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it already exists (a salvage writes only a new file)",
            ),
        ));
    }
    // The output is renamed into place, or removed on a failure.
    files::ensure_entries_can_move(files::parent_dir(out))?;
    let source = DamagedFile::open(damaged, schema, base.is_some(), opts.key.as_ref(), true)?;
    let built = build(&source, schema, base, out, opts);
    drop(source);
    match built {
        Ok(report) => Ok(report),
        Err(e) => {
            discard(out);
            Err(e)
        }
    }
}

/// Why a salvage with no backup to start from would read nothing of the damaged file at `path` (it is empty,
/// or its schema on page 1 cannot be read), or `None`: a repair says so instead of offering a salvage that
/// refuses. Reads only (page 1); an empty file is never opened.
pub fn nothing_to_salvage(path: &Path, schema: &'static Schema, key: Option<&crate::key::Key>) -> Option<String> {
    match DamagedFile::open(path, schema, false, key, false) {
        Err(Error::Corrupt { detail, .. }) => Some(detail),
        _ => None,
    }
}

/// The temporary name a salvage of the database at `db` is built under, beside it.
pub fn temp_path(db: &Path) -> PathBuf {
    files::with_suffix(db, TEMP_SUFFIX)
}

/// Removes a salvage output that will not be used: the file, its sidecars and the lock file its build
/// took. Only for files this process built (or a leftover of a killed salvage, under the owner lock).
pub fn discard(out: &Path) {
    files::discard_temporary_database(out);
}

/// A salvage built and verified by [`salvage_with`] beside the damaged database guarded by `lock` (at
/// [`temp_path`] of it), to be put in its place by [`restore::replace_all`]
/// ([`restore::Replacement::Salvage`]), the way a restore places a backup and through the same journal
/// (hazards: "Backups and restore"): the damaged file moves aside with its `-wal`/`-shm` as
/// `<name>.<tag>-<time>` (repair's tag: `corrupt`; never deleted), the output (already fsynced) is renamed
/// into place and the directory fsynced; a kill before the journal's commit is undone by the next owner's
/// start (the damaged file back in place with its `-wal`, the output removed). Before the journal, a
/// `salvage` provenance row is written into the output, and its counters raised to `id_floors`,
/// the lowest AUTOINCREMENT counters it must end with (ids other files refer to); once placed, it is opened
/// once as its owner.
#[derive(Debug)]
pub struct BuiltSalvage {
    pub schema: &'static Schema,
    pub lock: OwnerLock,
    /// The output, beside the database.
    pub built: PathBuf,
    pub report: SalvageReport,
    pub id_floors: Vec<(String, i64)>,
    /// The moves of ids the data directory's files record ([`crate::renumber::recorded_runs`]): rows taken
    /// from a backup of before them name the old ids, and are brought up to them
    /// ([`crate::renumber::catch_up`], said in the report's notes).
    pub moves_recorded: Vec<crate::renumber::IdMoves>,
}

/// Writes into the output of `salvage` (not placed yet), to stand at `path` with the damaged file moved aside
/// to `quarantined`, where it came from (the damaged file's lineage carried, the ids it could not read, a
/// `salvage` row), its counters raised to the floors; its report updated to the final paths.
pub(crate) fn stamp(
    salvage: &mut BuiltSalvage,
    path: &Path,
    quarantined: Option<&Path>,
    key: Option<&crate::key::Key>,
) -> Result<()> {
    let report = &mut salvage.report;
    // (The build left the file in rollback-journal mode: the open that writes this puts it back in WAL.)
    // The output stands for the damaged file, so it keeps its lineage (its backups stay its own): read from
    // the damaged file (still at `path`) or, where that cannot be read, from the backup the salvage started
    // from.
    let lineage = quarantined
        .and_then(|_| lineage_of(path, key))
        .or_else(|| report.base_backup.as_deref().and_then(|b| lineage_of(b, key)));
    if let Some(q) = quarantined.filter(|_| report.from == path) {
        report.from = q.to_path_buf();
    }
    report.out = path.to_path_buf();
    let mut record = Provenance::from_file(SALVAGE_EVENT, &report.from);
    record.source_version = report.from_version.map(i64::from);
    record.detail = Some(format!(
        "{} rows salvaged, {} from the backup {}, {}",
        report.salvaged(),
        report.from_backup(),
        report
            .base_backup
            .as_ref()
            .map(|b| b.display().to_string())
            .unwrap_or_else(|| "(none)".into()),
        report.lost_said()
    ));
    // The ids it could not read: a report tells a project lost with the damage from one the user deleted.
    // Over a backup, only those past the backup's counters: every row the backup holds is in the output (where
    // the damaged file cannot be read it is the backup's), so an id up to them that the output lacks was
    // deleted, before the backup or, where the damaged file reads, after it.
    let backup_counters: BTreeMap<String, i64> = report
        .base_backup
        .as_deref()
        .map(|b| restore::counters_of(b, key).into_iter().collect())
        .unwrap_or_default();
    let unreadable: Vec<IdRange> = report
        .tables
        .iter()
        .flat_map(|(table, t)| {
            let past_backup = backup_counters.get(table).map_or(1, |last| last + 1);
            t.unreadable_ranges.iter().filter_map(move |&(first, last)| {
                let first = first.max(1).max(past_backup);
                (first <= last).then(|| IdRange {
                    table: table.clone(),
                    first,
                    last,
                })
            })
        })
        .collect();
    let lost = Provenance::lost_to_damage(SALVAGE_EVENT, &unreadable);
    // What the damaged file recorded of ids it lacked (left out by a restore, lost to earlier damage), past the
    // backup's counters (the backup's own records, in the output, speak for the others): the output lacks them
    // too. Without them a project a restore left out read as deleted after a salvage with no backup.
    let floors: Vec<(String, i64)> = backup_counters.into_iter().collect();
    let (left_out, lost_before) = quarantined
        .map(|_| crate::provenance::missing_ranges_past(path, key, &floors))
        .unwrap_or_default();
    let carried = (!left_out.is_empty() || !lost_before.is_empty())
        .then(|| Provenance::now(SALVAGE_EVENT).with_missing_ids(&left_out, &lost_before));
    let notes = &mut report.notes;
    restore::write_before_placing(&salvage.built, salvage.schema, None, key, |tx| {
        // Rows from a backup of before a repair moved ids name the old ones: moved first, so that the counters
        // are raised from the ids the output then holds.
        let caught = crate::renumber::catch_up(tx, salvage.schema, &salvage.moves_recorded)?;
        notes.extend(caught.iter().map(|c| c.to_string()));
        // Ids other files refer to are never handed out again (the salvage itself raised the counters past
        // every id the damaged file shows).
        restore::raise_counters(tx, &salvage.id_floors)?;
        if let Some(lineage) = &lineage {
            Provenance::carried_lineage(lineage).insert(tx)?;
        }
        if let Some(lost) = &lost {
            lost.insert(tx)?;
        }
        if let Some(carried) = &carried {
            carried.insert(tx)?;
        }
        record.insert(tx)
    })
}

/// The output of `salvage` stands in place of the damaged file (it carries where it came from: [`stamp`]):
/// opens it once as its owner. Returns its report and the lock, still held.
pub(crate) fn finish_placed(
    salvage: BuiltSalvage,
    key: Option<&crate::key::Key>,
) -> Result<(SalvageReport, OwnerLock)> {
    let BuiltSalvage {
        schema, lock, report, ..
    } = salvage;
    let options = OpenOptions {
        key: key.cloned(),
        ..OpenOptions::default()
    };
    let owner = OwnerConnection::open_locked(lock, schema, &options)?;
    Ok((report, owner.into_lock()))
}

/// The damaged file, opened read-only.
struct DamagedFile {
    path: PathBuf,
    /// The file SQLite reads: `path`, or a copy of its whole pages when it ends inside one ([`WholePages`]).
    read_from: PathBuf,
    /// Why `read_from` is a copy, said in the report's notes; the copy is removed when this is dropped.
    whole_pages: Option<WholePages>,
    schema: &'static Schema,
    /// The connection every read goes through ([`DamagedFile::read`]); replaced after a read of an encrypted
    /// file meets damage.
    conn: RefCell<Connection>,
    /// The key of an encrypted file (its pages on disk are ciphertext, never read directly).
    key: Option<crate::key::Key>,
    /// None when its schema cannot be read (then nothing can be read from it).
    version: Option<u32>,
    /// Why nothing could be read, when that is so.
    unreadable: Option<String>,
    /// Its AUTOINCREMENT counters, when `sqlite_sequence` can be read.
    sequences: Option<BTreeMap<String, i64>>,
}

impl DamagedFile {
    /// Opens `path` read-only and reads what it is. A file of another kind, or newer than this build, is
    /// refused. A file whose schema cannot be read is an error unless there is a backup to start from. With
    /// `whole_pages`, a plaintext file that ends inside a page is read through a copy of its whole pages
    /// ([`WholePages`]); without, as it is (a look at page 1 only).
    fn open(
        path: &Path,
        schema: &'static Schema,
        have_base: bool,
        key: Option<&crate::key::Key>,
        whole_pages: bool,
    ) -> Result<DamagedFile> {
        files::require_regular_file(path, "read the damaged database")?;
        if std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) == 0 {
            // SQLite deletes a `-wal` it finds beside an empty database, even on a read-only connection
            // (pager.c, pagerOpenWalIfPresent): opening this file would destroy what is left of it.
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: "the file is empty (0 bytes): there is nothing in it to salvage, and SQLite would delete \
                         its -wal on opening it"
                    .into(),
                schema: Some(schema),
            });
        }
        // Plaintext only: an encrypted file's cut page fails SQLCipher's check, and its header is ciphertext.
        let cut = key.map_or_else(|| pages::ends_inside_a_page(path), |_| None);
        // A file cut inside its first page has no schema to read: no copy of whole pages (it would be empty).
        let first_page_cut = cut.filter(|&(len, page_size)| len < page_size);
        let whole_pages = match cut {
            Some((len, page_size)) if whole_pages && first_page_cut.is_none() => {
                Some(WholePages::of(path, len, page_size)?)
            }
            _ => None,
        };
        let read_from = whole_pages.as_ref().map_or(path, |w| &w.db).to_path_buf();
        let mut file = DamagedFile {
            path: path.to_path_buf(),
            conn: RefCell::new(Self::connect(&read_from, schema, key)?),
            read_from,
            whole_pages,
            schema,
            key: key.cloned(),
            version: None,
            unreadable: None,
            sequences: None,
        };
        if let Some((len, page_size)) = first_page_cut {
            let why = format!("it ends inside its first page ({len} of {page_size} bytes), which holds its schema");
            if have_base {
                file.unreadable = Some(why);
                return Ok(file);
            }
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                detail: format!("nothing of it can be salvaged: {why}, and there is no backup to start from"),
                schema: Some(schema),
            });
        }
        let state = migrate::read_state(&file.conn.borrow(), path, schema);
        match state.map_err(|e| crate::key::explain(e, key)) {
            Ok(state) => {
                migrate::check_identity(&file.conn.borrow(), path, schema, &state)?;
                if state.user_version > schema.end_version() {
                    return Err(Error::SchemaNewer {
                        path: path.to_path_buf(),
                        found: state.user_version,
                        supported: schema.end_version(),
                        schema,
                    });
                }
                file.version = Some(state.user_version);
            }
            Err(e @ (Error::Corrupt { .. } | Error::NotADatabase { .. })) if have_base => {
                file.unreadable = Some(e.what());
            }
            Err(e @ (Error::Corrupt { .. } | Error::NotADatabase { .. })) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    detail: format!(
                        "nothing of it can be salvaged: its schema (page 1) cannot be read ({}), and there is no \
                         backup to start from",
                        e.what()
                    ),
                    schema: Some(schema),
                });
            }
            Err(e) => return Err(e),
        }
        if file.unreadable.is_none() {
            // Unreadable counters are damage like any other (the caller notes them).
            file.sequences = file
                .read(|conn| Ok(restore::read_sequences(conn).map_or((None, true), |s| (Some(s), false))))?
                .0;
        }
        Ok(file)
    }

    /// A connection to the damaged file, ready to read around damage.
    fn connect(path: &Path, schema: &'static Schema, key: Option<&crate::key::Key>) -> Result<Connection> {
        // Read-only: a salvage never writes the damaged file. Not `immutable=1`: that would ignore the
        // committed transactions still in its WAL (hazards: "Readers of a WAL database").
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .at_db(path, schema)?;
        crate::key::apply(&conn, path, key)?;
        // cell_size_check: a page whose cells are garbage fails rather than yields garbage rows.
        // writable_schema: SQLite refuses a file shorter than its header's page count as corrupt before
        // reading anything (btree.c, lockBtree) unless it is on; with it on, the pages that are there are read
        // and the missing ones fail one by one, as a damaged page does. The sqlite3 shell's `.dump` sets it for
        // the same reason. The connection is read-only: it cannot write the schema or anything else.
        conn.execute_batch("PRAGMA cell_size_check = ON; PRAGMA writable_schema = ON")
            .at_db(path, schema)?;
        Ok(conn)
    }

    /// Runs `read` on the file's connection; `read` says whether it met damage. After damage to an encrypted
    /// file the connection is replaced: SQLCipher takes a page that fails its HMAC check as a permanent error
    /// of the connection that read it (the page reads as zeros, which SQLite reports as damage, and every later
    /// read on that connection fails, "out of memory": `sqlite3Codec` in SQLCipher's `src/crypto.c`; hazards:
    /// "Encryption at rest"). A new connection reads on around the damage, as a plaintext file's connection
    /// does by itself (plain SQLite fails only the read that met the damaged page).
    fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<(T, bool)>) -> Result<(T, bool)> {
        let result = read(&self.conn.borrow());
        let (value, damaged) = result.map_err(|e| self.error(e))?;
        if damaged && self.key.is_some() {
            *self.conn.borrow_mut() = Self::connect(&self.read_from, self.schema, self.key.as_ref())?;
        }
        Ok((value, damaged))
    }

    fn error(&self, e: rusqlite::Error) -> Error {
        Error::from_sqlite(&self.path, e)
    }

    /// The file read page by page ([`pages`]); `Err` says why it cannot be. A plaintext file is read from
    /// disk, unless its `-wal` holds pages: a page in the WAL is newer than the file's copy, which could bring
    /// back a deleted row or an old value. That file, and an encrypted one (its pages on disk are ciphertext),
    /// are read through SQLite's pager instead, which takes the WAL into account (and where SQLCipher
    /// decrypts), with the `sqlite_dbpage` table (https://sqlite.org/dbpage.html; compiled in by
    /// `.cargo/config.toml`). A page that fails SQLCipher's HMAC check comes back as zeros and ends the
    /// connection ([`DamagedFile::read`]): it is taken as unreadable.
    fn pages(&self) -> std::result::Result<pages::RawFile<'_>, String> {
        let not_from_disk = if self.key.is_some() {
            "the file is encrypted (its pages on disk are ciphertext)".to_string()
        } else {
            let wal = files::with_suffix(&self.path, "-wal");
            if !std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
                return pages::RawFile::open(&self.path).map_err(|why| format!("the file {why}"));
            }
            format!("{} holds pages newer than the file's", wal.display())
        };
        const PAGE: &str = "SELECT data FROM sqlite_dbpage WHERE pgno = ?1";
        let conn = self.conn.borrow();
        if conn.prepare_cached(PAGE).is_err() {
            return Err(format!(
                "{not_from_disk}, and this build of SQLite has no sqlite_dbpage (SQLITE_ENABLE_DBPAGE_VTAB: \
                 docs/sqlite-hazards.md, \"The SQLite build\")"
            ));
        }
        let page_count = conn
            .query_row("PRAGMA page_count", [], |r| r.get::<_, u32>(0))
            .map_err(|e| format!("its page count cannot be read ({e})"))?;
        drop(conn);
        pages::RawFile::through(page_count, move |n| {
            let page = self.read(|conn| {
                let data = conn.prepare_cached(PAGE)?.query_row([n], |r| r.get::<_, Vec<u8>>(0));
                Ok(match data {
                    Ok(data) if data.iter().any(|&b| b != 0) => (Some(data), false),
                    _ => (None, true),
                })
            });
            page.ok().and_then(|(data, _)| data)
        })
        .map_err(|why| format!("the file {why}"))
    }

    /// The table's columns (by name), or None if the damaged file has no such table.
    fn columns(&self, table: &str) -> Result<Option<Vec<String>>> {
        let cols = table_columns(&self.conn.borrow(), table).map_err(|e| self.error(e))?;
        Ok((!cols.is_empty()).then(|| cols.into_iter().map(|c| c.name).collect()))
    }

    fn has_rowid(&self, table: &str) -> bool {
        self.conn
            .borrow()
            .prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote(table)))
            .is_ok()
    }
}

/// A copy of the whole pages of a plaintext damaged file that ends inside a page (a copy or sync cut short),
/// with its `-wal`, in a scratch folder of the data directory's private folder (removed when dropped; a
/// kill's is removed by the next start). SQLite reads the missing end of the last page as zeros, with no
/// error (`open_database::refuse_cut_mid_page`): that page's rows would come back as rows of zeros or with
/// values cut short into NUL bytes. Past the end of the copy, the page is one SQLite cannot read, which a
/// salvage reads around and counts as damage. Costs a copy of the file, only for such a file.
struct WholePages {
    db: PathBuf,
    /// What the report's notes say of it.
    note: String,
    _scratch: crate::private_dir::Scratch,
}

impl WholePages {
    /// The copy of the plaintext database at `path`, `len` bytes of `page_size`-byte pages, which ends inside
    /// its last page ([`pages::ends_inside_a_page`]).
    fn of(path: &Path, len: u64, page_size: u64) -> Result<WholePages> {
        let scratch = crate::private_dir::Scratch::new(files::parent_dir(path), "salvage")?;
        let db = scratch.path().join("whole-pages.db");
        restore::copy_private_first(path, &db, len - len % page_size)?;
        let wal = files::with_suffix(path, "-wal");
        if std::fs::symlink_metadata(&wal).is_ok_and(|m| m.is_file()) {
            restore::copy_private_first(&wal, &files::with_suffix(&db, "-wal"), u64::MAX)?;
        }
        let note = format!(
            "the damaged file ends inside a page ({len} bytes, {page_size}-byte pages): page {} is cut short by {} \
             bytes, which SQLite reads as zeros; it was read as a damaged page, its rows whose cells lie whole \
             before the cut read directly",
            len / page_size + 1,
            page_size - len % page_size
        );
        Ok(WholePages {
            db,
            note,
            _scratch: scratch,
        })
    }
}

/// Whether a SQLite error is damage to step over (rather than a failure of this process).
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase | ErrorCode::SystemIoFailure)
    )
}

/// Builds `out`; on error the caller removes it.
fn build(
    source: &DamagedFile,
    schema: &'static Schema,
    base: Option<&VerifiedBackup>,
    out: &Path,
    opts: &SalvageOptions,
) -> Result<SalvageReport> {
    if let Some(b) = base {
        restore::copy_private(b.path(), out)?;
    }
    let open = OpenOptions {
        temporary_file: true,
        key: opts.key.clone(),
        ..OpenOptions::default()
    };
    // Creates the file 0600 (or opens the backup's copy) and migrates it to this build's schema.
    let mut owner = OwnerConnection::open_with(out, schema, &open)?;
    // A salvage output is a single self-contained file, like a backup: no -wal to lose beside it. Until it
    // is verified it is a temporary file, loaded unsynced (fsynced once, closed, before it is placed), with a
    // rollback journal: a row refused by a constraint, and a derived table that cannot be read whole, are
    // rolled back alone (WAL wrote every page twice).
    crate::conn_ext::ready_for_bulk_load(owner.conn(), out, "delete", opts.key.is_some())?;
    let indexes = set_indexes_aside(&mut owner, base.is_none() && opts.key.is_none())?;
    let mut report = SalvageReport {
        database: schema.file_name,
        from: source.path.clone(),
        from_version: source.version,
        out: out.to_path_buf(),
        base_backup: base.map(|b| b.path().to_path_buf()),
        base_version: base.map(VerifiedBackup::version),
        version: owner.schema_version()?,
        tables: BTreeMap::new(),
        notes: Vec::new(),
    };
    if let Some(cut) = &source.whole_pages {
        report.notes.push(cut.note.clone());
    }
    if let Some(why) = &source.unreadable {
        report
            .notes
            .push(format!("nothing could be read from {}: {why}", source.path.display()));
    }
    // Unlike a restore, which puts a backup back at its own version, the output is at this build's: a build
    // of the damaged file's schema, if it is still installed (a daemon not upgraded yet), no longer opens it.
    if let Some(from) = source.version.filter(|v| *v < report.version) {
        report.notes.push(format!(
            "written at this build's schema {}, where the damaged file was at {from}: a build of schema {from} no \
             longer opens it (it says `schema_newer`): start {} of this build on it",
            report.version, schema.owner
        ));
    }
    if source.unreadable.is_none() && source.sequences.is_none() {
        report.notes.push(
            "the damaged file's AUTOINCREMENT counters (sqlite_sequence) could not be read: counters are set from \
             the ids seen instead"
                .into(),
        );
    }
    // When the damaged file's copy of every derived table reads whole, that copy replaces what the schema's
    // triggers derive as rows are copied, so their work is thrown away: 14.5 s of a 48 s salvage of a 1 GB
    // activity.db. They are switched off on this connection for the copy (SQLITE_DBCONFIG_ENABLE_TRIGGER,
    // https://sqlite.org/c3ref/c_dbconfig_defensive.html); the schema's triggers exist only to derive those
    // tables (`Schema::derived_tables`).
    let mut derived_whole = !schema.derived_tables.is_empty();
    for table in schema.derived_tables {
        derived_whole = derived_whole && reads_whole(source, table, &derived_columns(&owner, table)?);
    }
    set_triggers(&owner, !derived_whole)?;
    let tables = tables_parents_first(owner.conn()).map_err(|e| owner.error(e))?;
    for table in tables.iter().filter(|t| !schema.derived_tables.contains(&t.as_str())) {
        let from_backup = count_rows(owner.conn(), table).map_err(|e| owner.error(e))?;
        let mut t = TableSalvage {
            from_backup,
            ..TableSalvage::default()
        };
        if source.unreadable.is_none() {
            let over = match base {
                None => Over::Nothing,
                Some(_) if schema.append_only_tables.contains(&table.as_str()) => Over::BackupOfAppendOnly,
                Some(_) if derived_whole => Over::BackupDeletionsHonoured,
                Some(_) => Over::Backup,
            };
            copy_table(source, &mut owner, table, over, opts, &mut t, &mut report.notes)?;
        }
        report.tables.insert(table.clone(), t);
    }
    set_triggers(&owner, true)?;
    for table in schema.derived_tables {
        let t = take_derived(source, &mut owner, table, derived_whole, &mut report.notes)?;
        report.tables.insert(table.to_string(), t);
    }
    owner.write(|tx| {
        for sql in &indexes {
            tx.execute_batch(sql)?;
        }
        Ok(())
    })?;
    verify(owner.conn(), out, &report, opts)?;
    drop(owner);
    OwnerLock::remove_temporary(out)?;
    files::sync_file(out)?;
    Ok(report)
}

/// The output's checks: the injected hook, `integrity_check`, `foreign_key_check`, and each table's count
/// against the report.
fn verify(conn: &Connection, out: &Path, report: &SalvageReport, opts: &SalvageOptions) -> Result<()> {
    let failed = |detail: String| Error::VerificationFailed {
        path: out.to_path_buf(),
        detail,
    };
    if let Some(hook) = &opts.before_verify {
        hook(conn).map_err(|why| failed(format!("injected failure: {why}")))?;
    }
    let problems = check::integrity_check(conn).at(out)?;
    if !problems.is_empty() {
        return Err(failed(format!("integrity_check found: {}", problems.join("; "))));
    }
    let violations = check::foreign_key_violations(conn).at(out)?;
    if !violations.is_empty() {
        let shown: Vec<String> = violations.iter().take(5).map(|v| v.to_string()).collect();
        return Err(failed(format!(
            "foreign_key_check found {} violation(s): {}",
            violations.len(),
            shown.join("; ")
        )));
    }
    for (table, t) in &report.tables {
        let n = count_rows(conn, table).at(out)?;
        if n != t.from_backup + t.salvaged + t.derived {
            return Err(failed(format!(
                "{table} holds {n} rows where the report says {} from the backup and {} salvaged",
                t.from_backup, t.salvaged
            )));
        }
    }
    Ok(())
}

/// The output's indexes that enforce nothing (not UNIQUE): name and exact SQL.
const SPARE_INDEXES: &str = "SELECT s.name, s.sql FROM sqlite_schema AS s JOIN pragma_index_list(s.tbl_name) AS l \
    ON l.name = s.name WHERE s.type = 'index' AND s.sql IS NOT NULL AND NOT l.\"unique\" ORDER BY s.name";

/// When `wanted`, drops the output's indexes that enforce nothing and returns their exact SQL, to build them
/// again once the rows are in: each b-tree is then built once from sorted keys instead of entered row by row
/// (<https://sqlite.org/lang_createindex.html>), as the split builds its outputs'. UNIQUE indexes stay, to
/// refuse a duplicate row as it comes. Wanted only for an output that starts empty and in the clear:
/// - an encrypted output keeps every index: built afterwards, each would sort every key in memory
///   (`conn_ext::ready_for_bulk_load`), a sort that grows with history;
/// - an output that starts as a backup holds most rows already, and usually gains few (those newer than the
///   backup): dropping and building its indexes again costs more than entering those rows (on the 1 GB file
///   of docs/salvage.md, 20.7 s instead of 15.1 s).
fn set_indexes_aside(owner: &mut OwnerConnection, wanted: bool) -> Result<Vec<String>> {
    if !wanted {
        return Ok(Vec::new());
    }
    owner.write(|tx| {
        let spare: Vec<(String, String)> = tx
            .prepare(SPARE_INDEXES)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (name, _) in &spare {
            tx.execute_batch(&format!("DROP INDEX {}", quote(name)))?;
        }
        Ok(spare.into_iter().map(|(_, sql)| sql).collect())
    })
}

/// Switches the schema's triggers on or off on `owner`'s connection.
fn set_triggers(owner: &OwnerConnection, on: bool) -> Result<()> {
    owner
        .conn()
        .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, on)
        .map(drop)
        .map_err(|e| owner.error(e))
}

/// The output's columns of the derived table `table`, quoted: the ones it is copied by.
fn derived_columns(owner: &OwnerConnection, table: &str) -> Result<Vec<String>> {
    Ok(table_columns(owner.conn(), table)
        .map_err(|e| owner.error(e))?
        .into_iter()
        .map(|c| quote(&c.name))
        .collect())
}

/// Whether the damaged file can be read and its schema has `table`.
fn holds_table(source: &DamagedFile, table: &str) -> bool {
    source.unreadable.is_none() && matches!(source.columns(table), Ok(Some(_)))
}

/// Every row of `table` (`cols`, quoted).
fn select_all(table: &str, cols: &[String]) -> String {
    format!("SELECT {} FROM {}", cols.join(", "), quote(table))
}

/// Whether the damaged file's `table` reads whole by the columns `cols` (it has them all, and no page of it
/// is damaged).
fn reads_whole(source: &DamagedFile, table: &str, cols: &[String]) -> bool {
    if !holds_table(source, table) {
        return false;
    }
    let select = select_all(table, cols);
    let read = source.read(|conn| Ok(((), read_until_damage(conn, &select, cols.len(), |_| true)?)));
    matches!(read, Ok(((), false)))
}

/// A derived table of the output: the damaged file's own copy when it reads whole (in one transaction,
/// in place of what the triggers derived from the rows copied), else what the triggers derived. `required`:
/// the triggers were off for the copy, because the damaged file's copy read whole a moment before; failing
/// to read it now fails the salvage (the output has nothing else to count from).
fn take_derived(
    source: &DamagedFile,
    owner: &mut OwnerConnection,
    table: &str,
    required: bool,
    notes: &mut Vec<String>,
) -> Result<TableSalvage> {
    let cols = derived_columns(owner, table)?;
    let in_source = holds_table(source, table);
    let copied = if in_source {
        copy_whole(source, owner, table, &cols)?
    } else {
        None
    };
    let Some(salvaged) = copied else {
        if required {
            return Err(Error::VerificationFailed {
                path: owner.path().to_path_buf(),
                detail: format!(
                    "{table}: the damaged file's copy read whole before the other tables were copied and not \
                     after; nothing was put in place, and running the salvage again reads it again"
                ),
            });
        }
        let derived = count_rows(owner.conn(), table).map_err(|e| owner.error(e))?;
        let why = if in_source {
            "the damaged file's copy could not be read whole, so what it counted of rows no longer stored \
             (pruned or lost) is not kept"
        } else {
            "the damaged file has none (an older schema, or its schema is unreadable)"
        };
        notes.push(format!(
            "{table}: rebuilt from the rows salvaged ({derived} rows): {why}"
        ));
        return Ok(TableSalvage {
            derived,
            ..TableSalvage::default()
        });
    };
    Ok(TableSalvage {
        salvaged,
        ..TableSalvage::default()
    })
}

/// Puts the damaged file's `table` (its columns `cols`, quoted) whole in place of the output's, in one
/// transaction: the number of rows, or None, and the output's left as it was, when it cannot be read whole
/// (damaged, or a column of this build's the damaged file lacks). Each row goes to the output as it is read,
/// never all of them held at once: a derived table grows with history (13 months of running totals,
/// 511,380 rows, took 130 MB held in memory).
fn copy_whole(source: &DamagedFile, owner: &mut OwnerConnection, table: &str, cols: &[String]) -> Result<Option<u64>> {
    let select = select_all(table, cols);
    let insert = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(table),
        cols.join(", "),
        (1..=cols.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ")
    );
    owner.write(|tx| {
        // The rows the output's schema derived from the rows salvaged are what is left if the copy stops.
        tx.execute_batch("SAVEPOINT whole_copy")?;
        tx.execute(&format!("DELETE FROM {}", quote(table)), [])?;
        let mut insert = tx.prepare(&insert)?;
        let (mut rows, mut failed_insert) = (0_u64, None);
        let read = source.read(|conn| {
            let damaged = read_until_damage(conn, &select, cols.len(), |values| {
                match insert.execute(rusqlite::params_from_iter(values)) {
                    Ok(_) => rows += 1,
                    Err(e) => failed_insert = Some(e),
                }
                failed_insert.is_none()
            })?;
            Ok(((), damaged))
        });
        if let Some(e) = failed_insert {
            return Err(e);
        }
        if matches!(read, Ok(((), false))) {
            tx.execute_batch("RELEASE whole_copy")?;
            Ok(Some(rows))
        } else {
            tx.execute_batch("ROLLBACK TO whole_copy; RELEASE whole_copy")?;
            Ok(None)
        }
    })
}

fn count_rows(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

/// The user tables of the output (not SQLite's, not the bookkeeping), each after the tables its foreign
/// keys point at, so a child row is written after its parent. A cycle keeps schema order.
fn tables_parents_first(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?
        .into_iter()
        .filter(|n| !BOOKKEEPING_TABLES.contains(&n.as_str()))
        .collect();
    let mut parents = BTreeMap::new();
    for n in &names {
        let p: Vec<String> = conn
            .prepare("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?1)")?
            .query_map([n], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        parents.insert(n.clone(), p);
    }
    let mut ordered: Vec<String> = Vec::new();
    let mut left = names;
    while !left.is_empty() {
        let ready = left.iter().position(|n| {
            parents[n]
                .iter()
                .all(|p| p.eq_ignore_ascii_case(n) || ordered.iter().any(|o| o.eq_ignore_ascii_case(p)))
        });
        ordered.push(left.remove(ready.unwrap_or(0)));
    }
    Ok(ordered)
}

/// What a table's rows are copied over, in the output.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Over {
    /// Nothing: the output starts empty.
    Nothing,
    /// A backup: each row read is matched with the backup's row of its key (see [`BackupLookup`]).
    Backup,
    /// A backup, of a table whose rows never change ([`Schema::append_only_tables`]): only the rows past its
    /// highest rowid are read; the backup's own rows stay as they are.
    BackupOfAppendOnly,
    /// A backup, as [`Over::Backup`], while the derived tables are taken whole from the damaged file: those
    /// count the rows it deleted after the backup (sessions pruned by retention keep their time in the running
    /// totals), so a row of the backup it no longer holds where it reads is left out. Kept, an open session
    /// the damaged file had ended and pruned would be counted twice: open in reports, then again when
    /// recovery ends it.
    BackupDeletionsHonoured,
}

/// How rows of a table are told apart, in the output.
enum Key {
    /// By rowid (an `INTEGER PRIMARY KEY` column, or the hidden rowid): copied as is, and with a backup
    /// matched with the backup's row of the same rowid.
    Rowid,
    /// By these columns (a text primary key): with a backup, matched with the backup's row of the same key.
    Columns(Vec<String>),
}

/// One row read from the damaged file: its rowid and the copied columns' values.
type Row = (i64, Vec<Value>);

fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        // Text that is not UTF-8 is damage too; keep what can be shown rather than drop the row.
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Copies what can be read of `table` from the damaged file into the output, filling `t`.
fn copy_table(
    source: &DamagedFile,
    owner: &mut OwnerConnection,
    table: &str,
    over: Over,
    opts: &SalvageOptions,
    t: &mut TableSalvage,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Some(damaged_cols) = source.columns(table).or_else(|e| match e {
        Error::Corrupt { .. } | Error::NotADatabase { .. } => Ok(None),
        e => Err(e),
    })?
    else {
        notes.push(format!(
            "{table}: not in the damaged file (it is older, or its schema is damaged)"
        ));
        return Ok(());
    };
    let out_cols = table_columns(owner.conn(), table).map_err(|e| owner.error(e))?;
    let pk: Vec<&Column> = out_cols.iter().filter(|c| c.pk > 0).collect();
    let rowid_alias = match pk.as_slice() {
        [c] if c.decl_type.eq_ignore_ascii_case("INTEGER") => Some(c.name.clone()),
        _ => None,
    };
    let out_has_rowid = owner
        .conn()
        .prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote(table)))
        .is_ok();
    let key = if !out_has_rowid || (rowid_alias.is_none() && !pk.is_empty()) {
        let mut cols: Vec<&Column> = pk.clone();
        cols.sort_by_key(|c| c.pk);
        Key::Columns(cols.iter().map(|c| c.name.clone()).collect())
    } else {
        Key::Rowid
    };
    // The columns both have, by name; the output's own spelling. The rowid alias travels as the rowid.
    let common: Vec<String> = out_cols
        .iter()
        .filter(|c| Some(&c.name) != rowid_alias.as_ref())
        .filter(|c| damaged_cols.iter().any(|d| d.eq_ignore_ascii_case(&c.name)))
        .map(|c| c.name.clone())
        .collect();
    let missing: Vec<&str> = out_cols
        .iter()
        .filter(|c| Some(&c.name) != rowid_alias.as_ref())
        .filter(|c| !damaged_cols.iter().any(|d| d.eq_ignore_ascii_case(&c.name)))
        .map(|c| c.name.as_str())
        .collect();
    if !missing.is_empty() {
        notes.push(format!(
            "{table}: the damaged file has no column {}; salvaged rows take the default",
            missing.join(", ")
        ));
    }

    let explicit_rowid = matches!(key, Key::Rowid);
    let mut insert_cols: Vec<String> = Vec::new();
    if explicit_rowid {
        insert_cols.push("rowid".into());
    }
    insert_cols.extend(common.iter().map(|c| quote(c)));
    let placeholders: Vec<String> = (1..=insert_cols.len()).map(|i| format!("?{i}")).collect();
    let insert_sql = if insert_cols.is_empty() {
        format!("INSERT INTO {} DEFAULT VALUES", quote(table))
    } else {
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(table),
            insert_cols.join(", "),
            placeholders.join(", ")
        )
    };
    // Rows past the backup's highest rowid are new by construction; a table keyed otherwise is matched by key.
    let over = match (over, &key) {
        (Over::BackupOfAppendOnly, Key::Columns(_)) => Over::Backup,
        // Without rowids the backup's rows cannot be told from the damaged file's by its unreadable ranges.
        (Over::BackupDeletionsHonoured, Key::Columns(_)) => Over::Backup,
        (over, _) => over,
    };
    let start = match over {
        Over::BackupOfAppendOnly => {
            let max: Option<i64> = owner
                .conn()
                .query_row(&format!("SELECT max(rowid) FROM {}", quote(table)), [], |r| r.get(0))
                .map_err(|e| owner.error(e))?;
            max.map_or(i64::MIN, |m| m.saturating_add(1))
        }
        _ => i64::MIN,
    };
    let lookup = match over {
        Over::Backup | Over::BackupDeletionsHonoured => BackupLookup::new(table, &key, &common),
        _ => None,
    };
    let declared = common
        .iter()
        .map(|c| {
            let column = out_cols.iter().find(|o| &o.name == c);
            (
                c.clone(),
                column.map_or(Declared::Any, |o| Declared::of(&o.name, &o.decl_type)),
            )
        })
        .collect();
    let mut writer = TableWriter {
        owner,
        insert_sql,
        lookup,
        explicit_rowid,
        declared,
        t,
        max_seen: None,
        first_rejection: None,
        backup_rows_read: 0,
        rowids_read: (over == Over::BackupDeletionsHonoured && explicit_rowid).then(Vec::new),
    };

    if !source.has_rowid(table) {
        // A WITHOUT ROWID table has no rowid to seek by: read it in key order up to the first damage.
        let cols: Vec<String> = common.iter().map(|c| quote(c)).collect();
        let sql = format!("SELECT {} FROM {}", cols.join(", "), quote(table));
        let (rows, damaged) = source.read(|conn| {
            let mut rows = Vec::new();
            let damaged = read_until_damage(conn, &sql, common.len(), |values| {
                rows.push((0, values));
                true
            })?;
            Ok((rows, damaged))
        })?;
        writer.explicit_rowid = false;
        // Without the rowid, a row can be matched with the backup's only by a key of columns.
        writer.lookup = writer.lookup.filter(|l| !l.by_rowid);
        writer.put(rows)?;
        if damaged {
            notes.push(format!(
                "{table}: a WITHOUT ROWID table is read in key order up to its first damaged page; rows past it \
                 are lost and not counted"
            ));
        }
    } else {
        let mut select_cols = vec!["rowid".to_string()];
        select_cols.extend(common.iter().map(|c| quote(c)));
        let mut scan = Scan {
            source,
            sql: format!(
                "SELECT {} FROM {} NOT INDEXED WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3",
                select_cols.join(", "),
                quote(table)
            ),
            ncols: common.len(),
            chunk: opts.chunk_rows.max(1),
            budget: opts.probe_budget,
        };
        let gaps = scan.scan(start, i64::MAX, &mut writer)?;
        let mut gaps = scan.refine(gaps, &mut writer)?;
        // Read once, and only when something was unreadable: a whole pass over an index.
        let index = if gaps.is_empty() {
            None
        } else {
            index_rowids(source, table, &gaps)
        };
        if !gaps.is_empty() {
            let orphans = orphan_rows(source, table, &damaged_cols, &common, &gaps, index.as_ref(), notes);
            if !orphans.is_empty() {
                let ids: Vec<i64> = orphans.iter().map(|r| r.0).collect();
                writer.put(orphans)?;
                gaps = subtract(&gaps, &ids);
            }
        }
        let (gaps, bound) = cap_open_gap(gaps, source, table, index.as_ref(), notes);
        writer.t.unreadable_ranges = gaps;
        let kept = estimate_lost(writer.owner, table, writer.explicit_rowid, index, writer.t)?;
        if let Some(b) = bound {
            writer.max_seen = Some(writer.max_seen.map_or(b, |m| m.max(b)));
        }
        if kept > 0 {
            notes.push(format!(
                "{table}: {kept} row(s) of the backup lie where the damaged file could not be read: kept as the \
                 backup has them (a change made to them after the backup is lost)"
            ));
        }
        // Every row of the backup was met in the damaged file, or lies where it is unreadable, or is one it
        // no longer holds. (A table keyed by columns gets new rowids: its unreadable ranges say nothing of
        // the backup's rows, so this is not counted for it.)
        let gone = writer.t.from_backup.saturating_sub(writer.backup_rows_read + kept);
        if over == Over::BackupDeletionsHonoured && gone > 0 {
            let (left_out, listed) = leave_out_deleted(&mut writer, source, table)?;
            if listed > 0 {
                notes.push(format!(
                    "{table}: {listed} row(s) of the backup that the damaged file's index lists were not given by \
                     its table (damage that skips rows without an error): kept as the backup has them (a change \
                     made to them after the backup is lost)"
                ));
            }
            if left_out > 0 {
                notes.push(format!(
                    "{table}: {left_out} row(s) of the backup are not in the damaged file where it reads (deleted \
                     after the backup, by retention or by hand): left out, as the running totals taken from the \
                     damaged file already count them"
                ));
            }
        } else if over == Over::Backup && writer.explicit_rowid && gone > 0 {
            notes.push(format!(
                "{table}: {gone} row(s) of the backup are not in the damaged file where it reads (deleted after \
                 the backup, by retention or by hand): kept, as the backup has them"
            ));
        }
    }
    let (rejected, first_rejection, max_seen) = (writer.t.rejected, writer.first_rejection.take(), writer.max_seen);
    let owner = writer.owner;
    if rejected > 0 {
        notes.push(format!(
            "{table}: {rejected} row(s) read from the damaged file were refused by the schema and not copied \
             (first: {})",
            first_rejection.unwrap_or_default()
        ));
    }
    raise_sequence(owner, source, table, max_seen, notes)
}

/// The highest id of `table` anything shows: the counter of the damaged file, the rows read, the end of an
/// unreadable range. Sets the output's AUTOINCREMENT counter to at least that, so a new row never takes an
/// id a lost row had (https://sqlite.org/autoinc.html).
fn raise_sequence(
    owner: &mut OwnerConnection,
    source: &DamagedFile,
    table: &str,
    max_seen: Option<i64>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let autoincrement: bool = owner
        .conn()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1
                             AND upper(sql) LIKE '%AUTOINCREMENT%')",
            [table],
            |r| r.get(0),
        )
        .map_err(|e| owner.error(e))?;
    let recorded = source.sequences.as_ref().and_then(|s| s.get(table).copied());
    let target = match (recorded, max_seen) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => match a.or(b) {
            Some(v) => v,
            None => return Ok(()),
        },
    };
    if !autoincrement {
        if recorded.is_none() && max_seen.is_some_and(|m| m > 0) {
            notes.push(format!(
                "{table}: not AUTOINCREMENT, so a new row may take the id of a lost row above the highest one kept"
            ));
        }
        return Ok(());
    }
    owner.write(|tx| {
        tx.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?1, ?2
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?1)",
            params![table, target],
        )?;
        tx.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?2) WHERE name = ?1",
            params![table, target],
        )?;
        Ok(())
    })
}

/// `ranges` (sorted, inclusive) without the ids `ids` (sorted).
fn subtract(ranges: &[(i64, i64)], ids: &[i64]) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    for &(a, z) in ranges {
        let mut start = a;
        let from = ids.partition_point(|&i| i < a);
        for &id in ids[from..].iter().take_while(|&&i| i <= z) {
            if id > start {
                out.push((start, id - 1));
            }
            start = match id.checked_add(1) {
                Some(s) => s,
                None => return out,
            };
        }
        if start <= z {
            out.push((start, z));
        }
    }
    out
}

/// Rows of `table` on leaf pages SQLite cannot reach (below a damaged interior page), read from the file
/// page by page ([`pages`]), mapped to the `common` columns. A page is taken only when everything says it is
/// one of this table's lost leaves: it is not on the freelist (freed pages keep deleted rows); it is no page
/// of another table's b-tree, followed down from its root page, `sqlite_schema`'s (page 1) included; every
/// cell decodes; every rowid lies in an unreadable range of this table (so it is none of the leaves already
/// read) and, when an index of the table could be read, is one the index lists; every record has the table's
/// number of columns; and no other table with as many columns holds its first row (a readable leaf of that
/// table that its b-tree no longer reaches). Anything else is left alone.
fn orphan_rows(
    source: &DamagedFile,
    table: &str,
    damaged_cols: &[String],
    common: &[String],
    gaps: &[(i64, i64)],
    index: Option<&IndexedRowids>,
    notes: &mut Vec<String>,
) -> Vec<Row> {
    let raw = match source.pages() {
        Ok(raw) => raw,
        Err(why) => {
            notes.push(format!(
                "{table}: the leaf pages a damaged interior page may hide were not read one by one: {why}"
            ));
            return Vec::new();
        }
    };
    if raw.free.is_none() && index.is_none() {
        notes.push(format!(
            "{table}: pages were not read directly: neither the freelist nor an index can be read to tell lost \
             rows from deleted ones"
        ));
        return Vec::new();
    }
    let positions: Vec<usize> = common
        .iter()
        .filter_map(|c| damaged_cols.iter().position(|d| d.eq_ignore_ascii_case(c)))
        .collect();
    if positions.len() != common.len() {
        return Vec::new();
    }
    // Every other table b-tree's root: page 1 holds `sqlite_schema`'s, which is no row of sqlite_schema
    // (https://sqlite.org/fileformat2.html#storage_of_the_sql_database_schema); the others are in its
    // `rootpage` column (0 for a virtual table, which has no b-tree). SQLite's own tables are b-trees like
    // any other and none is left out: page 1's records have five columns, as config.db's `projects` rows do,
    // and a salvage of a config.db cut short took them for projects when they were.
    let schema_rows: rusqlite::Result<Vec<(String, Option<i64>)>> = source
        .conn
        .borrow()
        .prepare("SELECT name, rootpage FROM sqlite_schema WHERE type = 'table' AND name <> ?1 COLLATE NOCASE")
        .and_then(|mut s| s.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
    let schema_rows = match schema_rows {
        Ok(rows) => rows,
        Err(e) => {
            notes.push(format!(
                "{table}: pages were not read directly: the schema cannot be read whole to tell other tables' \
                 pages from this table's ({e})"
            ));
            return Vec::new();
        }
    };
    let roots: Vec<u32> = std::iter::once(1)
        .chain(
            schema_rows
                .iter()
                .filter_map(|(_, root)| root.and_then(|r| u32::try_from(r).ok()))
                .filter(|&r| r > 1),
        )
        .collect();
    let others: Vec<String> = std::iter::once("sqlite_schema".to_string())
        .chain(schema_rows.into_iter().map(|(name, _)| name))
        .filter(|t| {
            source
                .columns(t)
                .ok()
                .flatten()
                .is_some_and(|c| c.len() == damaged_cols.len())
        })
        .collect();
    // Whether another table holds this row as it is (then the page is that table's), or cannot be asked.
    let elsewhere = |rowid: i64, values: &[Value]| {
        others.iter().any(|t| {
            let sql = format!("SELECT * FROM {} NOT INDEXED WHERE rowid = ?1", quote(t));
            let held = source.read(|conn| {
                let found = conn.prepare_cached(&sql).and_then(|mut s| {
                    let mut rows = s.query([rowid])?;
                    match rows.next()? {
                        Some(r) => (0..values.len())
                            .map(|i| r.get_ref(i).map(owned))
                            .collect::<rusqlite::Result<Vec<_>>>()
                            .map(Some),
                        None => Ok(None),
                    }
                });
                Ok(match found {
                    Ok(Some(theirs)) => (
                        values
                            .iter()
                            .zip(&theirs)
                            .all(|(mine, theirs)| matches!(mine, Value::Null) || mine == theirs),
                        false,
                    ),
                    Ok(None) => (false, false),
                    // It cannot be asked: the page is left alone.
                    Err(e) => (true, is_damage(&e)),
                })
            });
            held.map_or(true, |(held, _)| held)
        })
    };
    // One pass over the file: the pages below each interior page, and the leaves that may be this table's.
    let mut below: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut candidates: Vec<(u32, Vec<Row>)> = Vec::new();
    for n in raw.page_numbers() {
        if raw.free.as_ref().is_some_and(|f| f.contains(&n)) {
            continue;
        }
        match raw.table_page(n) {
            Some(pages::TablePage::Interior(children)) => {
                below.insert(n, children);
            }
            Some(pages::TablePage::Leaf(cells))
                if cells.iter().all(|(id, values)| {
                    in_ranges(gaps, *id) && values.len() == damaged_cols.len() && index.is_none_or(|l| l.lists(*id))
                }) =>
            {
                candidates.push((n, cells));
            }
            _ => {}
        }
    }
    // The pages of the other tables' b-trees, as far as their interior pages lead: a leaf among them holds
    // that table's rows, whatever they look like.
    let mut theirs: HashSet<u32> = HashSet::new();
    let mut todo = roots;
    while let Some(n) = todo.pop() {
        if theirs.insert(n)
            && let Some(children) = below.get(&n)
        {
            todo.extend(children);
        }
    }
    let mut seen = HashSet::new();
    let mut rows: Vec<Row> = Vec::new();
    for (n, cells) in candidates {
        if theirs.contains(&n) || elsewhere(cells[0].0, &cells[0].1) {
            continue;
        }
        for (id, values) in cells {
            if seen.insert(id) {
                rows.push((id, positions.iter().map(|&p| values[p].clone()).collect()));
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    if !rows.is_empty() {
        notes.push(format!(
            "{table}: {} row(s) read directly from leaf pages that a damaged interior page hid from SQLite, or \
             that the end of the file cut short",
            rows.len()
        ));
    }
    rows
}

/// An unreadable range that runs to the end of the rowid space (the last pages could not be read) ends, as
/// far as anything shows, at the highest id the damaged file's counter or an index records. Returns the
/// ranges and that bound.
fn cap_open_gap(
    mut gaps: Vec<(i64, i64)>,
    source: &DamagedFile,
    table: &str,
    index: Option<&IndexedRowids>,
    notes: &mut Vec<String>,
) -> (Vec<(i64, i64)>, Option<i64>) {
    let recorded = source.sequences.as_ref().and_then(|s| s.get(table).copied());
    let indexed = index.and_then(|i| i.max);
    let bound = [recorded, indexed].into_iter().flatten().max();
    // An index read whole lists every row: an empty one (and no counter) shows there were none.
    let none_listed = recorded.is_none() && index.is_some_and(|i| i.max.is_none());
    if let Some(last) = gaps.last_mut().filter(|g| g.1 == i64::MAX) {
        match bound {
            Some(b) if b >= last.0 => last.1 = b,
            Some(_) => {
                gaps.pop();
            }
            None if none_listed => {
                gaps.pop();
            }
            None if last.0 == i64::MIN => notes.push(format!(
                "{table}: no row could be read, and nothing shows how many there were"
            )),
            None => notes.push(format!(
                "{table}: the rows from id {} on could not be read, and nothing shows how many there were",
                last.0
            )),
        }
    }
    (gaps, bound)
}

/// What one index of a table, read whole in the damaged file, says of the table's rows (an index holds one
/// entry per row, rowid included).
struct IndexedRowids {
    name: String,
    /// The rowids it lists inside the unreadable ranges it was read for, in order. Only those: every other
    /// row was read from the table, so this grows with the damage, not with the table (keeping every rowid
    /// of a 6 million row table took 47 MB more).
    in_ranges: Vec<i64>,
    /// The highest rowid it lists; None when it lists none.
    max: Option<i64>,
}

impl IndexedRowids {
    /// Whether it lists `id`, one inside the ranges it was read for.
    fn lists(&self, id: i64) -> bool {
        self.in_ranges.binary_search(&id).is_ok()
    }

    /// Reads the index whole with `sql` (its rowids), keeping those inside `ranges`.
    fn read(conn: &Connection, name: &str, sql: &str, ranges: &[(i64, i64)]) -> rusqlite::Result<IndexedRowids> {
        let mut listed = IndexedRowids {
            name: name.to_string(),
            in_ranges: Vec::new(),
            max: None,
        };
        let mut stmt = conn.prepare(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            listed.max = listed.max.max(Some(id));
            if in_ranges(ranges, id) {
                listed.in_ranges.push(id);
            }
        }
        listed.in_ranges.sort_unstable();
        Ok(listed)
    }
}

/// What one of the (complete, non-partial) indexes of `table` in the damaged file lists inside `ranges`, or
/// None if no index can be read whole.
fn index_rowids(source: &DamagedFile, table: &str, ranges: &[(i64, i64)]) -> Option<IndexedRowids> {
    let names: Vec<String> = source
        .conn
        .borrow()
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE partial = 0 ORDER BY name")
        .and_then(|mut s| s.query_map([table], |r| r.get(0))?.collect())
        .ok()?;
    names.into_iter().find_map(|name| {
        // INDEXED BY: the rowid is in every index entry, so this reads the index alone, never the table.
        let sql = format!("SELECT rowid FROM {} INDEXED BY {}", quote(table), quote(&name));
        // An index that does not read whole is taken as damaged, and the next one is tried.
        let (listed, _) = source
            .read(|conn| {
                Ok(IndexedRowids::read(conn, &name, &sql, ranges).map_or((None, true), |listed| (Some(listed), false)))
            })
            .ok()?;
        listed
    })
}

/// Whether `id` lies in one of `ranges` (sorted, disjoint, inclusive).
fn in_ranges(ranges: &[(i64, i64)], id: i64) -> bool {
    let i = ranges.partition_point(|r| r.1 < id);
    ranges.get(i).is_some_and(|r| r.0 <= id)
}

/// Fills `known_lost` and its basis from the unreadable ranges and, when one could be read, an index. When
/// the output keeps the damaged file's rowids (`same_rowids`), a row it already holds in a range (from the
/// backup: every row read from the damaged file lies outside the ranges) is not lost. Returns how many rows
/// of the output lie in the ranges (0 unless `same_rowids`).
fn estimate_lost(
    owner: &OwnerConnection,
    table: &str,
    same_rowids: bool,
    index: Option<IndexedRowids>,
    t: &mut TableSalvage,
) -> Result<u64> {
    if t.unreadable_ranges.is_empty() {
        return Ok(0);
    }
    let conn = owner.conn();
    let held = format!("SELECT count(*) FROM {} WHERE rowid BETWEEN ?1 AND ?2", quote(table));
    let held_in = |(a, z): (i64, i64)| {
        if !same_rowids {
            return Ok(0);
        }
        conn.prepare_cached(&held)?
            .query_row([a, z], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
    };
    let ranges = &t.unreadable_ranges;
    let mut kept = 0;
    let mut kept_in_bounded = 0;
    for &r in ranges {
        let n = held_in(r).map_err(|e| owner.error(e))?;
        kept += n;
        if r.1 != i64::MAX {
            kept_in_bounded += n;
        }
    }
    match index {
        Some(listed) => {
            let mut lost = 0;
            for &id in listed.in_ranges.iter().filter(|&&id| in_ranges(ranges, id)) {
                if kept == 0 || held_in((id, id)).map_err(|e| owner.error(e))? == 0 {
                    lost += 1;
                }
            }
            t.known_lost = lost;
            t.known_lost_basis = Some(format!("index {}", listed.name));
        }
        None => {
            // The ids SQLite hands out start at 1 (https://sqlite.org/autoinc.html): a range open below (the
            // table's first rows unreadable, nothing read before them) is counted from there.
            let ids: u64 = ranges
                .iter()
                .filter(|r| r.1 != i64::MAX)
                .map(|r| (i128::from(r.1) - i128::from(r.0.max(1)) + 1).max(0) as u64)
                .sum();
            t.known_lost = ids.saturating_sub(kept_in_bounded);
            t.known_lost_basis = Some(ID_RANGES.into());
        }
    }
    Ok(kept)
}

/// Reads `sql` until it ends or meets damage, handing each row's `ncols` values to `each`, which returns
/// false to stop: whether it met damage. Other errors fail.
fn read_until_damage(
    conn: &Connection,
    sql: &str,
    ncols: usize,
    mut each: impl FnMut(Vec<Value>) -> bool,
) -> rusqlite::Result<bool> {
    let mut stmt = match conn.prepare(sql) {
        Ok(s) => s,
        Err(e) if is_damage(&e) => return Ok(true),
        Err(e) => return Err(e),
    };
    let mut rows = stmt.query([])?;
    loop {
        match rows.next() {
            Ok(Some(r)) => {
                let values = (0..ncols)
                    .map(|i| r.get_ref(i).map(owned))
                    .collect::<rusqlite::Result<_>>()?;
                if !each(values) {
                    return Ok(false);
                }
            }
            Ok(None) => return Ok(false),
            Err(e) if is_damage(&e) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

/// What a probe found at a rowid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The first row at or after it (within the bound) reads: its rowid.
    Row(i64),
    /// No row at or after it within the bound.
    End,
    /// The first row at or after it cannot be read (or the seek to it fails).
    Damaged,
}

/// Reads one table of the damaged file in rowid order around its damage.
struct Scan<'s> {
    source: &'s DamagedFile,
    /// `SELECT rowid, cols.. WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid LIMIT ?3`.
    sql: String,
    ncols: usize,
    chunk: usize,
    /// Probes left for [`refine`](Self::refine).
    budget: u32,
}

impl Scan<'_> {
    /// Reads rows with `from <= rowid <= until`, at most `limit`: the rows read before any damage, and
    /// whether damage stopped it. A row out of order (a damaged cell pointer pointing at another cell: SQLite
    /// reads on without an error) is damage too: the cell it should have pointed at is lost.
    fn read(&self, from: i64, until: i64, limit: usize) -> Result<(Vec<Row>, bool)> {
        self.source.read(|conn| self.read_on(conn, from, until, limit))
    }

    fn read_on(&self, conn: &Connection, from: i64, until: i64, limit: usize) -> rusqlite::Result<(Vec<Row>, bool)> {
        let mut stmt = match conn.prepare_cached(&self.sql) {
            Ok(s) => s,
            Err(e) if is_damage(&e) => return Ok((Vec::new(), true)),
            Err(e) => return Err(e),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = match stmt.query(params![from, until, limit]) {
            Ok(r) => r,
            Err(e) if is_damage(&e) => return Ok((Vec::new(), true)),
            Err(e) => return Err(e),
        };
        let mut out: Vec<Row> = Vec::new();
        loop {
            match rows.next() {
                Ok(Some(r)) => {
                    let id: i64 = r.get(0)?;
                    let after = out.last().map_or(from, |l| l.0.saturating_add(1));
                    if id < after || id > until {
                        return Ok((out, true));
                    }
                    let values = (1..=self.ncols)
                        .map(|i| r.get_ref(i).map(owned))
                        .collect::<rusqlite::Result<_>>()?;
                    out.push((id, values));
                }
                Ok(None) => return Ok((out, false)),
                Err(e) if is_damage(&e) => return Ok((out, true)),
                Err(e) => return Err(e),
            }
        }
    }

    fn probe(&mut self, from: i64, until: i64) -> Result<Probe> {
        self.budget = self.budget.saturating_sub(1);
        let (rows, damaged) = self.read(from, until, 1)?;
        Ok(match (rows.first(), damaged) {
            (Some(r), _) => Probe::Row(r.0),
            (None, true) => Probe::Damaged,
            (None, false) => Probe::End,
        })
    }

    /// Reads `from..=until` into `w`, stepping over damage. Returns the unreadable ranges (inclusive), each
    /// starting where a read failed.
    fn scan(&mut self, from: i64, until: i64, w: &mut TableWriter<'_>) -> Result<Vec<(i64, i64)>> {
        let mut gaps: Vec<(i64, i64)> = Vec::new();
        let mut next = from;
        loop {
            let (rows, damaged) = self.read(next, until, self.chunk)?;
            // A seek that lands past the damage says nothing of the ids between where it started and the
            // first row it read: the damaged page may hold them (a damaged cell pointer makes SQLite's search
            // skip a cell without an error). They belong to the gap, which keeps `id ranges` an upper bound.
            if let (Some(gap), Some(first)) = (gaps.last_mut(), rows.first())
                && gap.1.checked_add(1) == Some(next)
            {
                gap.1 = first.0 - 1;
            }
            let count = rows.len();
            let last = rows.last().map(|r| r.0);
            w.put(rows)?;
            let after_last = match last {
                Some(l) => match l.checked_add(1) {
                    Some(a) => a,
                    None => return Ok(gaps),
                },
                None => next,
            };
            if after_last > until {
                return Ok(gaps);
            }
            if damaged {
                match self.next_readable(after_last, until)? {
                    Some(b) => {
                        gaps.push((after_last, b - 1));
                        next = b;
                    }
                    None => {
                        gaps.push((after_last, until));
                        return Ok(gaps);
                    }
                }
            } else if count < self.chunk {
                return Ok(gaps);
            } else {
                next = after_last;
            }
        }
    }

    /// The smallest `x` in `(a, until]` from which a read no longer fails at once, knowing one from `a` does:
    /// seeks at `a+1, a+3, a+7, ...` until one reads, then bisects back to the boundary. None if every
    /// seek up to `until` fails.
    fn next_readable(&mut self, a: i64, until: i64) -> Result<Option<i64>> {
        let mut lo = a;
        let mut step: i128 = 1;
        let mut hi = loop {
            if lo >= until {
                return Ok(None);
            }
            let x = (i128::from(lo) + step).min(i128::from(until)) as i64;
            match self.probe(x, until)? {
                Probe::Damaged => {
                    lo = x;
                    step = step.saturating_mul(2);
                }
                _ => break x,
            }
        };
        while i128::from(hi) - i128::from(lo) > 1 {
            let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
            match self.probe(mid, until)? {
                Probe::Damaged => lo = mid,
                _ => hi = mid,
            }
        }
        Ok(Some(hi))
    }

    /// Looks inside unreadable ranges for rows a damaged page hid (a good leaf between two damaged ones is
    /// skipped by the boundary search) by bisecting each range, while the probe budget lasts. Only rows read
    /// leave a range: a half where SQLite's seek finds no row stays (a damaged page can hide rows from a
    /// seek without an error). Returns the ranges still unreadable, merged.
    fn refine(&mut self, gaps: Vec<(i64, i64)>, w: &mut TableWriter<'_>) -> Result<Vec<(i64, i64)>> {
        let mut todo = gaps;
        let mut done = Vec::new();
        while let Some((a, z)) = todo.pop() {
            if z <= a || self.budget == 0 {
                done.push((a, z));
                continue;
            }
            // In (a, z]: the read from `a` is known to fail.
            let mid = ((i128::from(a) + i128::from(z)) / 2 + 1) as i64;
            match self.probe(mid, z)? {
                // No row from `mid` as SQLite seeks it, inside a range where it met damage: a damaged page
                // can hide rows from a seek without an error, so the half stays unreadable (not dropped):
                // only rows actually read leave a range.
                Probe::End => {
                    todo.push((a, mid - 1));
                    done.push((mid, z));
                }
                Probe::Damaged => {
                    todo.push((a, mid - 1));
                    todo.push((mid, z));
                }
                Probe::Row(r) => {
                    todo.push((a, mid - 1));
                    // Ids between the seek and the row it found are unknown, as in `scan`.
                    if r > mid {
                        done.push((mid, r - 1));
                    }
                    todo.extend(self.scan(r, z, w)?);
                }
            }
        }
        done.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, z) in done {
            match merged.last_mut() {
                Some(m) if i128::from(a) <= i128::from(m.1) + 1 => m.1 = m.1.max(z),
                _ => merged.push((a, z)),
            }
        }
        Ok(merged)
    }
}

/// With a backup, how a row read from the damaged file meets the backup's row of the same key. Both
/// statements take the row's values as `?1..?n` (the copied columns, in order) and, matched by rowid, the
/// rowid as `?n+1`.
struct BackupLookup {
    /// Whether the output holds the key, and if so whether with these values: no row, or one 0/1 column.
    same: String,
    /// Puts the damaged file's values in place of the backup's; None when no column is copied.
    update: Option<String>,
    by_rowid: bool,
}

impl BackupLookup {
    /// None when the key cannot be matched (a key column the damaged file lacks): its rows are inserted,
    /// and the schema refuses those whose key the backup holds.
    fn new(table: &str, key: &Key, common: &[String]) -> Option<BackupLookup> {
        // A key column compared with the row's value of it (by its place among the copied columns).
        let key_column_is = |name: &String| {
            common
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .map(|i| format!("{} IS ?{}", quote(name), i + 1))
        };
        let (key_is, by_rowid) = match key {
            Key::Rowid => (format!("rowid = ?{}", common.len() + 1), true),
            Key::Columns(cols) if !cols.is_empty() => {
                let conds: Option<Vec<String>> = cols.iter().map(key_column_is).collect();
                (conds?.join(" AND "), false)
            }
            Key::Columns(_) => return None,
        };
        let same: Vec<String> = common
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} IS ?{}", quote(c), i + 1))
            .collect();
        let same = if same.is_empty() {
            "1".to_string()
        } else {
            same.join(" AND ")
        };
        let set: Vec<String> = common
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ?{}", quote(c), i + 1))
            .collect();
        Some(BackupLookup {
            same: format!("SELECT {same} FROM {} WHERE {key_is}", quote(table)),
            update: (!set.is_empty()).then(|| format!("UPDATE {} SET {} WHERE {key_is}", quote(table), set.join(", "))),
            by_rowid,
        })
    }
}

/// Deletes from the output the rows of the backup that the damaged file no longer holds where it reads
/// ([`Over::BackupDeletionsHonoured`]), in one transaction: those neither read from its table, nor in its
/// unreadable ranges, nor listed by an index of it read whole. Returns how many were left out, and how many
/// were kept because such an index lists them.
fn leave_out_deleted(writer: &mut TableWriter<'_>, source: &DamagedFile, table: &str) -> Result<(u64, u64)> {
    let mut read = writer.rowids_read.take().unwrap_or_default();
    read.sort_unstable();
    let unreadable = &writer.t.unreadable_ranges;
    let held: Vec<i64> = writer.owner.read(|conn| {
        conn.prepare(&format!("SELECT rowid FROM {}", quote(table)))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()
    })?;
    let unmet: Vec<i64> = held
        .into_iter()
        .filter(|id| read.binary_search(id).is_err() && !in_ranges(unreadable, *id))
        .collect();
    // A damaged interior page can make a seek by rowid pass over a leaf without an error: those rows were
    // not deleted. An index of the damaged file read whole lists every row it holds; one it lists is kept.
    let ranges: Vec<(i64, i64)> = unmet.iter().map(|&id| (id, id)).collect();
    let index = match unmet.is_empty() {
        true => None,
        false => index_rowids(source, table, &ranges),
    };
    let (listed, deleted): (Vec<i64>, Vec<i64>) = unmet
        .into_iter()
        .partition(|&id| index.as_ref().is_some_and(|i| i.lists(id)));
    let left_out = writer.owner.write(|tx| {
        let mut delete = tx.prepare(&format!("DELETE FROM {} WHERE rowid = ?1", quote(table)))?;
        let mut n = 0u64;
        for id in deleted {
            n += delete.execute([id])? as u64;
        }
        Ok(n)
    })?;
    writer.t.from_backup -= left_out;
    Ok((left_out, listed.len() as u64))
}

/// A salvaged value against its column's declared type.
impl Declared {
    /// Why `value` cannot be one of this column's, or None when it can. A REAL without a fraction is taken
    /// in an INTEGER column: SQLite's INTEGER affinity stores it as the integer. A number in a TEXT column is
    /// stored as its text by TEXT affinity, which the application reads.
    fn refuses(self, value: &Value) -> Option<String> {
        match (self, value) {
            (Declared::Time, Value::Integer(ms)) if !crate::time::ms_range().contains(ms) => {
                Some(format!("is not a time ({ms} ms since the Unix epoch is out of range)"))
            }
            (Declared::Time, _) => Declared::Integer.refuses(value),
            (_, Value::Null) | (Declared::Any, _) | (Declared::Integer, Value::Integer(_)) => None,
            (Declared::Integer, Value::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => None,
            (Declared::Integer, Value::Real(_)) => Some("is not an integer (Real)".into()),
            (Declared::Integer, Value::Text(_)) => Some("is not an integer (Text)".into()),
            (Declared::Integer, Value::Blob(_)) => Some("is not an integer (Blob)".into()),
            (Declared::Text, Value::Blob(b)) => Some(format!("is not text (a BLOB of {} bytes)", b.len())),
            (Declared::Text, _) => None,
        }
    }
}

/// Writes rows of one table into the output, a chunk per `BEGIN IMMEDIATE` transaction.
struct TableWriter<'o> {
    owner: &'o mut OwnerConnection,
    insert_sql: String,
    lookup: Option<BackupLookup>,
    explicit_rowid: bool,
    /// Each copied column's name and what its declared type lets it hold, in the order of a row's values.
    declared: Vec<(String, Declared)>,
    t: &'o mut TableSalvage,
    /// The highest rowid read from the damaged file.
    max_seen: Option<i64>,
    first_rejection: Option<String>,
    /// Rows read whose key the backup holds (kept as they are, updated, or their update refused).
    backup_rows_read: u64,
    /// Every rowid read from the damaged file, for [`Over::BackupDeletionsHonoured`] (`None` otherwise).
    rowids_read: Option<Vec<i64>>,
}

impl TableWriter<'_> {
    fn put(&mut self, rows: Vec<Row>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if let Some(read) = self.rowids_read.as_mut() {
            read.extend(rows.iter().map(|r| r.0));
        }
        if self.explicit_rowid
            && let Some(m) = rows.iter().map(|r| r.0).max()
        {
            self.max_seen = Some(self.max_seen.map_or(m, |s| s.max(m)));
        }
        let (insert_sql, lookup, explicit_rowid) = (&self.insert_sql, &self.lookup, self.explicit_rowid);
        let declared = &self.declared;
        let (mut salvaged, mut already, mut updated, mut rejected, mut met) = (0u64, 0u64, 0u64, 0u64, 0u64);
        let mut first_rejection = None;
        let mut refuse = |why: String| {
            rejected += 1;
            first_rejection.get_or_insert(why);
        };
        // A constraint failure undoes that one statement, not the transaction
        // (https://sqlite.org/lang_conflict.html, ABORT): the row is refused, the rest goes on.
        let constraint = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(ErrorCode::ConstraintViolation) => Ok(e.to_string()),
            _ => Err(e),
        };
        self.owner.write(|tx| {
            let mut insert = tx.prepare_cached(insert_sql)?;
            let mut matching = match lookup {
                Some(l) => Some((
                    tx.prepare_cached(&l.same)?,
                    l.update.as_deref().map(|u| tx.prepare_cached(u)).transpose()?,
                    l.by_rowid,
                )),
                None => None,
            };
            for (rowid, values) in &rows {
                let rowid_value = Value::Integer(*rowid);
                let misfit = values
                    .iter()
                    .zip(declared)
                    .find_map(|(value, (name, declared))| declared.refuses(value).map(|why| format!("{name} {why}")));
                if let Some((same, update, by_rowid)) = matching.as_mut() {
                    let params = || values.iter().chain(by_rowid.then_some(&rowid_value));
                    let found: Option<bool> = same
                        .query_row(rusqlite::params_from_iter(params()), |r| r.get(0))
                        .optional()?;
                    if let Some(same) = found {
                        met += 1;
                        match (update.as_mut().filter(|_| !same), misfit) {
                            (None, _) => already += 1,
                            (Some(_), Some(why)) => refuse(why),
                            (Some(update), None) => match update.execute(rusqlite::params_from_iter(params())) {
                                Ok(_) => updated += 1,
                                Err(e) => refuse(constraint(e)?),
                            },
                        }
                        continue;
                    }
                }
                if let Some(why) = misfit {
                    refuse(why);
                    continue;
                }
                let params = explicit_rowid.then_some(&rowid_value).into_iter().chain(values.iter());
                match insert.execute(rusqlite::params_from_iter(params)) {
                    Ok(_) => salvaged += 1,
                    Err(e) => refuse(constraint(e)?),
                }
            }
            Ok(())
        })?;
        self.t.salvaged += salvaged;
        self.t.already_in_backup += already;
        self.t.updated += updated;
        self.t.rejected += rejected;
        self.backup_rows_read += met;
        if self.first_rejection.is_none() {
            self.first_rejection = first_rejection;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_read_for_unreadable_ranges_keeps_only_the_rowids_inside_them() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        // The index lists the rows in the reverse of rowid order.
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER NOT NULL); CREATE INDEX t_k ON t (k);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000)
             INSERT INTO t (id, k) SELECT i, 1000 - i FROM n;",
        )
        .unwrap();
        let sql = "SELECT rowid FROM t INDEXED BY t_k";
        let ranges = [(10, 12), (500, 502), (998, i64::MAX)];
        let listed = IndexedRowids::read(&conn, "t_k", sql, &ranges).unwrap();
        assert_eq!(listed.name, "t_k");
        assert_eq!(listed.in_ranges, vec![10, 11, 12, 500, 501, 502, 998, 999, 1000]);
        assert_eq!(listed.max, Some(1000));
        assert!(listed.lists(501) && listed.lists(1000));
        assert!(!listed.lists(13) && !listed.lists(997));

        conn.execute("DELETE FROM t", []).unwrap();
        let listed = IndexedRowids::read(&conn, "t_k", sql, &ranges).unwrap();
        assert_eq!((listed.in_ranges.len(), listed.max), (0, None));
    }

    /// A time (`*_ms`) its sign bit flipped puts out of the range the application maps is refused, as a
    /// value of another type is: every read of the row would fail on it.
    #[test]
    fn a_time_out_of_the_range_the_application_maps_is_refused() {
        let time = Declared::of("timestamp_ms", "INTEGER");
        assert_eq!(time, Declared::Time);
        assert_eq!(time.refuses(&Value::Integer(1_700_000_000_000)), None);
        let flipped = 1_700_000_000_000 | i64::MIN;
        assert_eq!(
            time.refuses(&Value::Integer(flipped)).unwrap(),
            format!("is not a time ({flipped} ms since the Unix epoch is out of range)")
        );
        assert_eq!(
            time.refuses(&Value::Text("noon".into())).unwrap(),
            "is not an integer (Text)"
        );
        assert_eq!(Declared::of("session_id", "INTEGER"), Declared::Integer);
    }

    #[test]
    fn in_ranges_takes_both_ends_of_each_range_and_nothing_between_ranges() {
        let ranges = [(i64::MIN, -5), (3, 3), (7, 9)];
        let inside: Vec<i64> = (-7..12).filter(|&id| in_ranges(&ranges, id)).collect();
        assert_eq!(inside, vec![-7, -6, -5, 3, 7, 8, 9]);
        assert!(!in_ranges(&[], 0));
    }
}
