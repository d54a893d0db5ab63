//! Where a database's content came from: a split of a legacy file, a restore from a backup, a fresh start
//! after repair. Kept in the file itself (`provenance`, created with `schema_migrations`), so a tool can tell
//! its own finished work from anything else.

use rusqlite::{Connection, params};
use serde::Serialize;

/// The event an owner records when it repaired state a previous owner left behind by stopping uncleanly
/// (for example: closed what it had left open). Diagnostics report the last one.
pub const RECOVERY_EVENT: &str = "recovery";

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
