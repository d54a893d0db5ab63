//! Copying one legacy table into its output, row by row, with every row accounted for.
//!
//! A row is converted (times to epoch ms, the credential flag), checked against what the output requires
//! (NOT NULL columns, read from the output itself), then inserted; a row that cannot be kept goes to the
//! rejects file with the reason. Two loaders:
//! - config.db's tables (small, with enforced foreign keys and UNIQUE pairs): one INSERT per row, so a
//!   constraint failure rejects that row only (an orphan, a duplicate);
//! - activity.db's tables (large, nothing a checked row can fail): read and converted on one thread,
//!   inserted on another (see [`copy_batched`]), through multi-row INSERTs of [`BATCH_ROWS`] rows: one
//!   statement execution and one AUTOINCREMENT counter update per batch instead of per row.
//!
//! Each table is one transaction on its output. The legacy rows are read in key order inside the
//! caller's read transaction; values are borrowed from SQLite, and copied (into reused buffers) only to
//! cross to the writing thread.

use std::collections::HashMap;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Row, Statement, Transaction};
use serde_json::{Map, Value};

use crate::digest::RowDigest;
use crate::error::{Result, SplitError};
use crate::kept_ids::KeptIds;
use crate::legacy::legacy_error;
use crate::legacy_time;
use crate::progress::{Progress, TICK_ROWS};
use crate::queries::{self, Key, Redact, Source, TABLES, Table};
use crate::rejects::{self, RejectsFile};
use crate::report::TableCounts;

/// Widest table (activity_sessions: key + 9 columns).
const MAX_COLUMNS: usize = 12;
/// Rows per multi-row INSERT of the batched loader: one statement execution, and one AUTOINCREMENT counter
/// update, per batch instead of per row.
const BATCH_ROWS: usize = 64;

/// Substrings of a settings key that mark its value as a credential (compared case-insensitively).
pub const CREDENTIAL_MARKERS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "api-key",
    "credential",
];

/// Whether a settings key names a credential (`api_token`, `CalendarPassword`, `sync.secret`).
pub fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    CREDENTIAL_MARKERS.iter().any(|m| key.contains(m))
}

/// Binds a borrowed value (SQLite copies it while binding).
struct Bind<'a>(ValueRef<'a>);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(self.0))
    }
}

/// What the copy of one table produced.
#[derive(Debug)]
pub(crate) struct TableRun {
    pub counts: TableCounts,
    /// Digest of every value inserted, in key order.
    pub digest: RowDigest,
    /// Largest id referenced per parent table (rejected rows included), for the AUTOINCREMENT counters.
    pub max_refs: Vec<(&'static str, i64)>,
}

/// Where a table's rows come from and go to.
pub(crate) struct Endpoints<'a> {
    pub legacy: &'a Connection,
    pub legacy_path: &'a std::path::Path,
    pub version: u32,
    pub output: &'a mut store_core::OwnerConnection,
    pub rejects: &'a mut RejectsFile,
    /// Kept ids of parent tables already loaded (see [`KeptIds`]); this table's are added when it is one.
    pub kept: &'a mut HashMap<&'static str, KeptIds>,
    pub progress: &'a Progress,
}

/// Copies `table` in one transaction on its output.
pub(crate) fn copy_table(table: &'static Table, ends: Endpoints<'_>) -> Result<TableRun> {
    let plan = Plan::new(table, ends.version, ends.output)?;
    let is_parent = TABLES
        .iter()
        .flat_map(|t| t.references)
        .any(|r| !r.enforced && r.parent == table.name);
    let mut tally = Tally {
        loose: table
            .references
            .iter()
            .zip(&plan.reference_indexes)
            .filter(|(r, _)| !r.enforced)
            .filter_map(|(r, idx)| {
                ends.kept
                    .get(r.parent)
                    .filter(|k| !k.overflowed())
                    .map(|k| (*idx, r.null_is_dangling, k))
            })
            .collect(),
        own: is_parent.then(KeptIds::default),
        run: TableRun {
            counts: TableCounts::default(),
            digest: RowDigest::default(),
            max_refs: table.references.iter().map(|r| (r.parent, 0)).collect(),
        },
    };
    let batched = table.key == Key::Id && table.unique.is_empty() && table.references.iter().all(|r| !r.enforced);
    if batched {
        copy_batched(
            &plan,
            ends.legacy,
            ends.legacy_path,
            ends.output,
            ends.rejects,
            &mut tally,
            ends.progress,
        )?;
    } else {
        copy_rows(
            &plan,
            ends.legacy,
            ends.legacy_path,
            ends.output,
            ends.rejects,
            &mut tally,
            ends.progress,
        )?;
    }
    let Tally { own, run, .. } = tally;
    if let Some(own) = own {
        ends.kept.insert(table.name, own);
    }
    Ok(run)
}

/// Everything about a table that does not change from row to row.
struct Plan {
    table: &'static Table,
    version: u32,
    /// Output columns, key included.
    ncols: usize,
    /// Each legacy column of this version and its place in the SELECT (the raw row of the rejects file).
    raw_columns: Vec<(&'static str, usize)>,
    key_index: Option<usize>,
    unique_indexes: Vec<usize>,
    reference_indexes: Vec<usize>,
    /// Columns the output declares NOT NULL.
    required: Vec<usize>,
    /// What each column's declared type lets it hold (by index, the key's first).
    declared: Vec<Declared>,
}

/// The storage a copied value must have to be read back by the stores, by the output column's declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    /// INTEGER: an integer (a REAL that is one is taken as it; SQLite would store it so).
    Integer,
    /// TEXT: text that is UTF-8 (the stores read it as Rust strings).
    Text,
    /// Anything.
    Any,
}

impl Plan {
    fn new(table: &'static Table, version: u32, output: &store_core::OwnerConnection) -> Result<Plan> {
        let ncols = table.columns.len() + 1;
        assert!(ncols <= MAX_COLUMNS, "table map wider than MAX_COLUMNS");
        let index_of = |name: &str| table.columns.iter().position(|c| c.output == name).map(|i| i + 1);
        let columns: Vec<(String, bool, String)> = output
            .conn()
            .prepare(queries::OUTPUT_COLUMNS)
            .and_then(|mut s| {
                s.query_map([table.name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(|e| SplitError::Store(output.error(e)))?;
        let mut declared = vec![Declared::Any; ncols];
        for (name, _, kind) in &columns {
            if let Some(i) = index_of(name) {
                declared[i] = match kind.as_str() {
                    "INTEGER" => Declared::Integer,
                    "TEXT" => Declared::Text,
                    _ => Declared::Any,
                };
            }
        }
        Ok(Plan {
            table,
            version,
            ncols,
            raw_columns: std::iter::once((table.key.sql(), 0))
                .chain(table.columns.iter().enumerate().filter_map(|(i, c)| {
                    c.legacy()
                        .filter(|(_, since)| *since <= version)
                        .map(|(name, _)| (name, i + 1))
                }))
                .collect(),
            key_index: index_of("key"),
            unique_indexes: table.unique.iter().filter_map(|c| index_of(c)).collect(),
            reference_indexes: table.references.iter().filter_map(|r| index_of(r.column)).collect(),
            required: columns
                .iter()
                .filter(|(_, not_null, _)| *not_null)
                .filter_map(|(name, _, _)| index_of(name))
                .collect(),
            declared,
        })
    }

    /// Converts one legacy row into `vals`; returns why the row cannot be kept, if so.
    fn convert<'r>(
        &self,
        row: &'r Row<'_>,
        vals: &mut [ValueRef<'r>; MAX_COLUMNS],
        max_refs: &mut [(&'static str, i64)],
    ) -> rusqlite::Result<Option<String>> {
        let mut reason = None;
        vals[0] = row.get_ref(0)?;
        for (i, col) in self.table.columns.iter().enumerate() {
            let raw = row.get_ref(i + 1)?;
            vals[i + 1] = match col.source {
                Source::Copy { legacy: name, .. } => self.typed(i + 1, name, raw, &mut reason),
                Source::Seconds { legacy: name, .. } => match self.typed(i + 1, name, raw, &mut reason) {
                    ValueRef::Integer(seconds) if !(0..=queries::MAX_SECONDS).contains(&seconds) => {
                        reason.get_or_insert_with(|| {
                            format!("{name} is {seconds}: no session lasts that long (0 to 100 years)")
                        });
                        ValueRef::Integer(seconds)
                    }
                    value => value,
                },
                Source::Time { legacy: name, .. } => match legacy_time::to_epoch_ms(raw) {
                    Ok(Some(ms)) => ValueRef::Integer(ms),
                    Ok(None) => ValueRef::Null,
                    Err(why) => {
                        reason.get_or_insert_with(|| format!("unparseable time in {name}: {why}"));
                        ValueRef::Null
                    }
                },
                Source::CredentialFlag => {
                    let key = self.key_index.map_or(ValueRef::Null, |k| vals[k]);
                    let secret = matches!(key, ValueRef::Text(t) if is_credential_key(&String::from_utf8_lossy(t)));
                    ValueRef::Integer(i64::from(secret))
                }
            };
        }
        for (slot, idx) in max_refs.iter_mut().zip(&self.reference_indexes) {
            if let ValueRef::Integer(id) = vals[*idx] {
                slot.1 = slot.1.max(id);
            }
        }
        if reason.is_none()
            && let Some(&i) = self.required.iter().find(|&&i| vals[i] == ValueRef::Null)
        {
            let col = &self.table.columns[i - 1];
            let name = col.legacy().map_or(col.output, |(name, _)| name);
            reason = Some(format!("{name} is NULL, which the output requires"));
        }
        Ok(reason)
    }

    /// `raw`, copied to column `i` (legacy `name`), as the column's declared type lets the stores read it
    /// back: a row holding a value they could not read (text in an integer column, a BLOB or bytes that are
    /// not UTF-8 in a text one) would fail every report or stop the server at each start; it goes to the
    /// rejects file with the reason (the storage class only: the value may be a secret).
    fn typed<'r>(&self, i: usize, name: &str, raw: ValueRef<'r>, reason: &mut Option<String>) -> ValueRef<'r> {
        let refused = match (self.declared[i], raw) {
            (_, ValueRef::Null) | (Declared::Any, _) | (Declared::Integer, ValueRef::Integer(_)) => None,
            // An integer written as a REAL (`2.0`): SQLite's INTEGER affinity stores it as the integer.
            (Declared::Integer, ValueRef::Real(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
                return ValueRef::Integer(f as i64);
            }
            (Declared::Integer, other) => Some(format!("{name} is not an integer ({})", other.data_type())),
            (Declared::Text, ValueRef::Text(t)) if std::str::from_utf8(t).is_ok() => None,
            (Declared::Text, ValueRef::Text(_)) => Some(format!("{name} is not UTF-8 text")),
            (Declared::Text, ValueRef::Blob(b)) => Some(format!("{name} is not text (a BLOB of {} bytes)", b.len())),
            (Declared::Text, _) => None,
        };
        if let Some(why) = refused {
            reason.get_or_insert(why);
        }
        raw
    }

    /// A rejected row as the rejects file shows it: its id and its raw legacy values (settings values
    /// redacted, calendar feed URLs cut to their scheme and host).
    fn raw_row(&self, row: &Row<'_>) -> rusqlite::Result<(Option<i64>, Map<String, Value>)> {
        let mut raw = Map::new();
        let mut id = None;
        for (name, idx) in &self.raw_columns {
            let v = row.get_ref(*idx)?;
            if *idx == 0
                && let ValueRef::Integer(i) = v
            {
                id = Some(i);
            }
            let value = match self.table.redacted {
                Some((column, Redact::Value)) if column == *name => Value::from(rejects::REDACTED),
                Some((column, Redact::UrlHost)) if column == *name => match v {
                    ValueRef::Null => Value::Null,
                    ValueRef::Text(t) => {
                        Value::from(config_store::CalendarUrl::new(String::from_utf8_lossy(t)).redacted())
                    }
                    _ => Value::from(rejects::REDACTED),
                },
                _ => rejects::json_value(v),
            };
            raw.insert((*name).to_string(), value);
        }
        Ok((id, raw))
    }

    fn reject(
        &self,
        row: &Row<'_>,
        reason: &str,
        rejects: &mut RejectsFile,
        legacy_path: &std::path::Path,
    ) -> Result<()> {
        let (id, raw) = self.raw_row(row).map_err(|e| legacy_error(legacy_path, e))?;
        rejects.write(self.table.name, id, raw, reason)
    }
}

/// Per-row bookkeeping of the rows that made it into the output.
struct Tally<'k> {
    /// Plain references checked against their parent's kept ids: (column, NULL is dangling, parent ids).
    loose: Vec<(usize, bool, &'k KeptIds)>,
    /// This table's own kept ids, when a plain reference names it.
    own: Option<KeptIds>,
    run: TableRun,
}

impl Tally<'_> {
    fn copied_row(&mut self, vals: &[ValueRef<'_>]) {
        self.run.counts.copied += 1;
        for v in vals {
            self.run.digest.value(*v);
        }
        self.run.digest.end_row();
        if let (Some(own), ValueRef::Integer(id)) = (self.own.as_mut(), vals[0]) {
            own.insert(id);
        }
        let dangling = self
            .loose
            .iter()
            .any(|(idx, null_is_dangling, parent)| match vals[*idx] {
                ValueRef::Null => *null_is_dangling,
                ValueRef::Integer(id) => parent.contains(id) == Some(false),
                _ => true,
            });
        self.run.counts.dangling += u64::from(dangling);
    }
}

/// One INSERT per row: config.db's tables, where a row may fail a constraint on its own.
fn copy_rows(
    plan: &Plan,
    legacy: &Connection,
    legacy_path: &std::path::Path,
    output: &mut store_core::OwnerConnection,
    rejects: &mut RejectsFile,
    tally: &mut Tally<'_>,
    progress: &Progress,
) -> Result<()> {
    let lerr = |e| legacy_error(legacy_path, e);
    let opath = output.path().to_path_buf();
    let oerr = |e| SplitError::Store(store_core::Error::from_sqlite(&opath, e));
    let table = plan.table;
    let mut select = legacy
        .prepare(&queries::legacy_select(table, plan.version))
        .map_err(lerr)?;
    let mut parent_lookups: Vec<(&'static str, Statement<'_>)> = table
        .references
        .iter()
        .filter(|r| r.enforced)
        .map(|r| {
            legacy
                .prepare(&queries::legacy_parent_exists(r.parent))
                .map(|s| (r.parent, s))
        })
        .collect::<rusqlite::Result<_>>()
        .map_err(lerr)?;
    output.try_write(|tx: &Transaction<'_>| {
        let mut insert = tx.prepare(&queries::output_insert(table)).map_err(oerr)?;
        let mut duplicate_of = queries::output_duplicate_of(table)
            .map(|sql| tx.prepare(&sql))
            .transpose()
            .map_err(oerr)?;
        let mut rows = select.query([]).map_err(lerr)?;
        while let Some(row) = rows.next().map_err(lerr)? {
            let mut vals = [ValueRef::Null; MAX_COLUMNS];
            let mut reason = plan.convert(row, &mut vals, &mut tally.run.max_refs).map_err(lerr)?;
            if reason.is_none() {
                reason = insert_row(
                    &mut insert,
                    duplicate_of.as_mut(),
                    &vals[..plan.ncols],
                    &plan.unique_indexes,
                    &mut tally.run.counts,
                    || orphan_reason(plan, &vals, &mut parent_lookups),
                )
                .map_err(oerr)?;
                if reason.is_none() {
                    tally.copied_row(&vals[..plan.ncols]);
                }
            }
            if let Some(reason) = reason {
                tally.run.counts.rejected += 1;
                plan.reject(row, &reason, rejects, legacy_path)?;
            }
            progress.inc(1);
            progress.go_on()?;
        }
        Ok::<_, SplitError>(())
    })
}

/// Inserts one row; on a constraint failure returns why the row is rejected (duplicate, orphan, other).
fn insert_row(
    insert: &mut Statement<'_>,
    duplicate_of: Option<&mut Statement<'_>>,
    vals: &[ValueRef<'_>],
    unique_indexes: &[usize],
    counts: &mut TableCounts,
    orphan: impl FnOnce() -> rusqlite::Result<String>,
) -> rusqlite::Result<Option<String>> {
    let e = match insert.execute(rusqlite::params_from_iter(vals.iter().map(|v| Bind(*v)))) {
        Ok(_) => return Ok(None),
        Err(e) => e,
    };
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => f.extended_code,
        _ => return Err(e),
    };
    Ok(Some(match code {
        rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            counts.duplicates += 1;
            let first: Option<i64> = match duplicate_of {
                Some(stmt) => stmt.query_row(
                    rusqlite::params_from_iter(unique_indexes.iter().map(|&i| Bind(vals[i]))),
                    |r| r.get(0),
                )?,
                None => None,
            };
            match first {
                Some(id) => format!("duplicate of id {id}"),
                None => format!("duplicate: {e}"),
            }
        }
        rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            counts.dangling += 1;
            orphan()?
        }
        _ => format!("constraint: {e}"),
    }))
}

/// Why a row failed its enforced foreign key: its parent was deleted in the legacy file (the legacy
/// schema's ON DELETE CASCADE was never enforced), or the parent itself was rejected.
fn orphan_reason(
    plan: &Plan,
    vals: &[ValueRef<'_>],
    lookups: &mut [(&'static str, Statement<'_>)],
) -> rusqlite::Result<String> {
    let references = plan.table.references.iter().zip(&plan.reference_indexes);
    for (r, idx) in references.filter(|(r, _)| r.enforced) {
        let Some((_, stmt)) = lookups.iter_mut().find(|(p, _)| *p == r.parent) else {
            continue;
        };
        let ValueRef::Integer(id) = vals[*idx] else {
            continue;
        };
        let in_legacy: bool = stmt.query_row([id], |row| row.get(0))?;
        return Ok(if in_legacy {
            format!("orphan: {} {id}: that {} row was itself rejected", r.column, r.parent)
        } else {
            format!(
                "orphan: {} {id}: {} has no row {id} (deleted; the legacy ON DELETE CASCADE was never enforced)",
                r.column, r.parent
            )
        });
    }
    Ok("orphan: a foreign key of the output is not satisfied".to_string())
}

/// Rows per message from the reading thread to the writing one: the channel's cost per row is noise.
const MESSAGE_ROWS: usize = BATCH_ROWS * 16;

/// Messages waiting in the channel at most: the reader runs at most this far ahead, so memory stays
/// bounded (a few MiB) whatever the table's size.
const MESSAGES_IN_FLIGHT: usize = 4;

/// A value copied out of SQLite's row into a [`RowBatch`] (text and blobs as ranges of its bytes).
#[derive(Debug, Clone, Copy)]
enum Owned {
    Null,
    Integer(i64),
    Real(f64),
    Text(usize, usize),
    Blob(usize, usize),
}

/// Converted rows on their way from the reading thread to the writing one: values and one buffer of
/// bytes, both reused from batch to batch (the writer sends them back).
#[derive(Debug, Default)]
struct RowBatch {
    values: Vec<Owned>,
    bytes: Vec<u8>,
    rows: usize,
}

impl RowBatch {
    fn push(&mut self, row: &[ValueRef<'_>]) {
        for v in row {
            let owned = match *v {
                ValueRef::Null => Owned::Null,
                ValueRef::Integer(i) => Owned::Integer(i),
                ValueRef::Real(f) => Owned::Real(f),
                ValueRef::Text(t) => {
                    self.bytes.extend_from_slice(t);
                    Owned::Text(self.bytes.len() - t.len(), t.len())
                }
                ValueRef::Blob(b) => {
                    self.bytes.extend_from_slice(b);
                    Owned::Blob(self.bytes.len() - b.len(), b.len())
                }
            };
            self.values.push(owned);
        }
        self.rows += 1;
    }

    fn value(&self, i: usize) -> ValueRef<'_> {
        match self.values[i] {
            Owned::Null => ValueRef::Null,
            Owned::Integer(i) => ValueRef::Integer(i),
            Owned::Real(f) => ValueRef::Real(f),
            Owned::Text(at, len) => ValueRef::Text(&self.bytes[at..at + len]),
            Owned::Blob(at, len) => ValueRef::Blob(&self.bytes[at..at + len]),
        }
    }

    fn clear(&mut self) {
        self.values.clear();
        self.bytes.clear();
        self.rows = 0;
    }
}

/// What the reading thread sends the writing one.
enum Message {
    Rows(RowBatch),
    /// Every row was sent: the writer commits. A channel closed without it means the reader failed, and
    /// the writer commits nothing.
    Done,
}

/// activity.db's tables, where a checked row cannot fail a constraint: read, converted, checked, counted
/// and digested on this thread; inserted on a second one, through multi-row INSERTs of [`BATCH_ROWS`]
/// rows, in one transaction. The two threads share the work of the copy about evenly (the reader steps
/// through the legacy b-tree, parses times and digests values; the writer binds, inserts and keeps the
/// output's indexes), so the copy runs on both cores. Rows go over a bounded channel in batches of owned
/// values, reused: the reader never waits for SQLite's allocator on the writer's behalf (bundled SQLite
/// takes a global mutex on every allocation it counts, so both threads binding values would serialise).
fn copy_batched(
    plan: &Plan,
    legacy: &Connection,
    legacy_path: &std::path::Path,
    output: &mut store_core::OwnerConnection,
    rejects: &mut RejectsFile,
    tally: &mut Tally<'_>,
    progress: &Progress,
) -> Result<()> {
    let lerr = |e| legacy_error(legacy_path, e);
    let ncols = plan.ncols;
    let table = plan.table;
    let mut select = legacy
        .prepare(&queries::legacy_select(plan.table, plan.version))
        .map_err(lerr)?;
    let (to_writer, from_reader) = std::sync::mpsc::sync_channel::<Message>(MESSAGES_IN_FLIGHT);
    let (back_to_reader, recycled) = std::sync::mpsc::channel::<RowBatch>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || write_batches(table, ncols, output, &from_reader, &back_to_reader));
        let read = (|| -> Result<bool> {
            let mut batch = RowBatch::default();
            let mut ticks = 0;
            let mut rows = select.query([]).map_err(lerr)?;
            while let Some(row) = rows.next().map_err(lerr)? {
                let mut vals = [ValueRef::Null; MAX_COLUMNS];
                match plan.convert(row, &mut vals, &mut tally.run.max_refs).map_err(lerr)? {
                    Some(reason) => {
                        tally.run.counts.rejected += 1;
                        plan.reject(row, &reason, rejects, legacy_path)?;
                    }
                    None => {
                        tally.copied_row(&vals[..ncols]);
                        batch.push(&vals[..ncols]);
                        if batch.rows == MESSAGE_ROWS {
                            let next = recycled.try_recv().unwrap_or_default();
                            if to_writer
                                .send(Message::Rows(std::mem::replace(&mut batch, next)))
                                .is_err()
                            {
                                return Ok(false); // the writer stopped: its error says why
                            }
                        }
                    }
                }
                ticks += 1;
                if ticks == TICK_ROWS {
                    progress.inc(ticks);
                    progress.go_on()?;
                    ticks = 0;
                }
            }
            progress.inc(ticks);
            if batch.rows > 0 && to_writer.send(Message::Rows(batch)).is_err() {
                return Ok(false);
            }
            Ok(to_writer.send(Message::Done).is_ok())
        })();
        drop(to_writer);
        let written = writer.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The reader's failure first: the writer only saw its channel close.
        match read {
            Err(e) => Err(e),
            Ok(_) => written,
        }
    })
}

/// The writing side of [`copy_batched`]: inserts what arrives, in one transaction, committed only when
/// the reader said every row was sent.
fn write_batches(
    table: &'static Table,
    ncols: usize,
    output: &mut store_core::OwnerConnection,
    from_reader: &std::sync::mpsc::Receiver<Message>,
    back_to_reader: &std::sync::mpsc::Sender<RowBatch>,
) -> Result<()> {
    let opath = output.path().to_path_buf();
    let oerr = |e| SplitError::Store(store_core::Error::from_sqlite(&opath, e));
    output.try_write(|tx: &Transaction<'_>| {
        let mut insert = tx
            .prepare(&queries::output_insert_batch(table, BATCH_ROWS))
            .map_err(oerr)?;
        let mut pending = 0;
        loop {
            match from_reader.recv() {
                Ok(Message::Rows(mut batch)) => {
                    for r in 0..batch.rows {
                        for k in 0..ncols {
                            insert
                                .raw_bind_parameter(pending * ncols + k + 1, Bind(batch.value(r * ncols + k)))
                                .map_err(oerr)?;
                        }
                        pending += 1;
                        if pending == BATCH_ROWS {
                            insert.raw_execute().map_err(oerr)?;
                            pending = 0;
                        }
                    }
                    batch.clear();
                    let _ = back_to_reader.send(batch);
                }
                Ok(Message::Done) => break,
                Err(_) => {
                    return Err(SplitError::Verification {
                        path: opath.clone(),
                        detail: format!("the copy of {} stopped before its last row", table.name),
                    });
                }
            }
        }
        if pending > 0 {
            // The last, partial batch: NULL in the unused rows, which the statement skips.
            for idx in pending * ncols + 1..=BATCH_ROWS * ncols {
                insert.raw_bind_parameter(idx, rusqlite::types::Null).map_err(oerr)?;
            }
            insert.raw_execute().map_err(oerr)?;
        }
        Ok::<_, SplitError>(())
    })
}
