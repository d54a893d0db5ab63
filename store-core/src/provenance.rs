//! Where a database's content came from: a split of a legacy file, a restore from a backup, a fresh start
//! after repair. Kept in the file itself (`provenance`, created with `schema_migrations`), so a tool can tell
//! its own finished work from anything else.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::key::Key;
use crate::restore::IdsAdded;

/// The event an owner records when it repaired state a previous owner left behind by stopping uncleanly
/// (for example: closed what it had left open). Diagnostics report the last one.
pub const RECOVERY_EVENT: &str = "recovery";

/// The event that gives a database file its lineage: a random id (32 hexadecimal digits, in `detail`) that
/// the file gets at its first open as an owner by a build that knows lineages, and that every copy of it
/// keeps: a backup is a page copy, a restore puts such a copy in place, a salvage carries the damaged
/// file's. Two data directories backing up into one folder are told apart by it: rotation removes only
/// backups of the file's own lineage, and a restore or repair from a folder takes the file's own backups
/// (`backup::backups_for`). The newest record counts. A data directory copied whole (`cp -r`) keeps its
/// lineage: its copy's backups and the original's are not told apart.
pub const LINEAGE_EVENT: &str = "lineage";

/// One provenance record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    /// What happened: `split`, `restore`, `backup`, `recovery`, `repair-empty`.
    pub event: String,
    /// When, in Unix epoch milliseconds (UTC).
    pub at_ms: i64,
    pub source_path: Option<String>,
    pub source_sha256: Option<String>,
    pub source_version: Option<i64>,
    /// Free text (a split's id, a note). Never a settings value.
    pub detail: Option<String>,
}

impl Provenance {
    /// A record of `event` now.
    pub fn now(event: &str) -> Provenance {
        Provenance {
            event: event.to_string(),
            at_ms: chrono::Utc::now().timestamp_millis(),
            source_path: None,
            source_sha256: None,
            source_version: None,
            detail: None,
        }
    }

    /// A record of `event` now, from the file at `source`, named by its absolute path: a path as typed
    /// (relative to wherever the command ran) says nothing once read elsewhere, and two data directories
    /// typed alike from different places would read as one.
    pub fn from_file(event: &str, source: &Path) -> Provenance {
        Provenance {
            source_path: Some(crate::files::absolute(source).display().to_string()),
            ..Provenance::now(event)
        }
    }

    /// Inserts the record (inside the caller's transaction).
    pub fn insert(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO provenance (event, at_ms, source_path, source_sha256, source_version, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.event,
                self.at_ms,
                self.source_path,
                self.source_sha256,
                self.source_version,
                self.detail
            ],
        )?;
        Ok(())
    }

    /// Whether the file has the `provenance` table (every file a migration has run on does).
    pub fn table_exists(conn: &Connection) -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'provenance')",
            [],
            |r| r.get(0),
        )
    }

    /// The file's lineage: the detail of its newest `lineage` record (see [`LINEAGE_EVENT`]), if any.
    pub fn lineage(conn: &Connection) -> rusqlite::Result<Option<String>> {
        if !Self::table_exists(conn)? {
            return Ok(None);
        }
        conn.query_row(
            "SELECT detail FROM provenance WHERE event = ?1 ORDER BY id DESC LIMIT 1",
            [LINEAGE_EVENT],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()
        .map(Option::flatten)
    }

    /// Gives the file a lineage of its own when it has none: 16 random bytes from SQLite's generator, which
    /// the operating system seeds (<https://sqlite.org/lang_corefunc.html#randomblob>). One statement, so
    /// atomic. A file without the `provenance` table (no migration has run) is left alone.
    pub(crate) fn ensure_lineage(conn: &Connection) -> rusqlite::Result<()> {
        if Self::table_exists(conn)? && Self::lineage(conn)?.is_none() {
            conn.execute(
                "INSERT INTO provenance (event, at_ms, detail) VALUES (?1, ?2, lower(hex(randomblob(16))))",
                params![LINEAGE_EVENT, chrono::Utc::now().timestamp_millis()],
            )?;
        }
        Ok(())
    }

    /// A record that makes `lineage` the file's (inside the caller's transaction): a file rebuilt from
    /// another (a salvage) keeps the lineage of the one it stands for.
    pub fn carried_lineage(lineage: &str) -> Provenance {
        Provenance {
            detail: Some(lineage.to_string()),
            ..Provenance::now(LINEAGE_EVENT)
        }
    }

    /// This record, saying in its detail that the ids `left_out` (handed out by the file a restore replaced
    /// after its backup was taken) are not in the file: read back by [`ids_left_out`]. Nothing when there are
    /// none.
    pub fn with_left_out(mut self, left_out: &[IdsAdded]) -> Provenance {
        if !left_out.is_empty() {
            self.detail = serde_json::to_string(&LeftOutDetail {
                left_out: left_out.to_vec(),
            })
            .ok();
        }
        self
    }

    /// All records, oldest first. A file without the table (never migrated) has none.
    pub fn read_all(conn: &Connection) -> rusqlite::Result<Vec<Provenance>> {
        if !Self::table_exists(conn)? {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT event, at_ms, source_path, source_sha256, source_version, detail FROM provenance ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            Ok(Provenance {
                event: r.get(0)?,
                at_ms: r.get(1)?,
                source_path: r.get(2)?,
                source_sha256: r.get(3)?,
                source_version: r.get(4)?,
                detail: r.get(5)?,
            })
        })?
        .collect()
    }
}

/// The detail of a restore record whose backup lacked ids the replaced file had handed out.
#[derive(Serialize, serde::Deserialize)]
struct LeftOutDetail {
    left_out: Vec<IdsAdded>,
}

/// The ids of `table` that restores of this file left out (the files they replaced had handed them out after
/// the backups were taken), from their records, oldest restore first: an id among them that the file does
/// not have was lost with a file a restore replaced (kept aside as `<db>.replaced-<time>` until `cleanup`),
/// not deleted by the user. A file without the `provenance` table has none.
pub fn ids_left_out(conn: &Connection, table: &str) -> rusqlite::Result<Vec<std::ops::RangeInclusive<i64>>> {
    if !Provenance::table_exists(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare("SELECT detail FROM provenance WHERE detail LIKE '{\"left_out\":%' ORDER BY id")?;
    let details = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut ranges = Vec::new();
    for detail in details {
        // A detail that does not parse is not a record of this kind: nothing to say about ids.
        let Ok(parsed) = serde_json::from_str::<LeftOutDetail>(&detail?) else {
            continue;
        };
        ranges.extend(
            parsed
                .left_out
                .into_iter()
                .filter(|ids| ids.table == table)
                .map(|ids| ids.first..=ids.last),
        );
    }
    Ok(ranges)
}

/// The lineage of the database file at `path` (read-only, with `key`), or `None` when it has none or cannot
/// be read (missing, not a regular file, damaged where the record is, under another key): callers then
/// cannot tell whose backups are whose, and say so where it matters.
pub fn lineage_of(path: &Path, key: Option<&Key>) -> Option<String> {
    let conn = crate::read_pool::open_if_readable(path, key)?;
    Provenance::lineage(&conn).ok().flatten()
}
