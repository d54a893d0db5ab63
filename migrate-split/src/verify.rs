//! Verification of a loaded output before anything is put in place: every row read back through a
//! separate read-only connection and compared with what was inserted (count and digest, in key order),
//! then the file as a whole (header fields, `quick_check`, `foreign_key_check`).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags};
use store_core::{Schema, SqliteResultExt};

use crate::digest::RowDigest;
use crate::error::{Result, SplitError};
use crate::progress::Progress;
use crate::queries::{self, Table};
use store_core::files::file_uri;

/// Page cache of a verifying connection (KiB): it reads each page once, in order, so a small cache is
/// enough, and keeps the split's memory flat.
const VERIFY_CACHE_KIB: i64 = 2 * 1024;

fn open_read_only(path: &Path, key: Option<&store_core::Key>) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(file_uri(path, "mode=ro"), flags).at(path)?;
    store_core::key::apply(&conn, path, key)?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{VERIFY_CACHE_KIB}"))
        .at(path)?;
    Ok(conn)
}

fn verification_failed(path: &Path, detail: String) -> SplitError {
    SplitError::Verification {
        path: path.to_path_buf(),
        detail,
    }
}

/// A loaded output, ready to be checked: its file, its schema, and what was inserted in each table (rows
/// and digest, in key order).
pub(crate) struct Finished<'a> {
    pub path: &'a Path,
    pub schema: &'a Schema,
    pub tables: Vec<&'a (&'static Table, u64, RowDigest)>,
}

/// One check of a finished output.
enum Check<'a> {
    /// A table read back and compared with what was inserted ([`verify_table`]).
    Table(&'a Path, &'a (&'static Table, u64, RowDigest)),
    /// The file as a whole ([`verify_file`]).
    File(&'a Path, &'a Schema),
}

impl Check<'_> {
    /// Runs the check through a read-only connection of its own, interrupted once `progress`'s stop flag is
    /// set (a table of a 1 GB file reads back for seconds).
    fn run(&self, key: Option<&store_core::Key>, progress: &Progress) -> Result<()> {
        let (Check::Table(path, _) | Check::File(path, _)) = self;
        let conn = open_read_only(path, key)?;
        let interrupt = [conn.get_interrupt_handle()];
        progress.interruptible(&interrupt, move || match self {
            Check::Table(path, expected) => verify_table(conn, path, expected),
            Check::File(path, schema) => verify_file(conn, path, schema),
        })
    }
}

/// Every check of the finished outputs, each through a read-only connection of its own, on two threads
/// (one per core) taking the longest checks first: the whole list's time is about the longest check's,
/// or half the sum. The first failure is returned (the other thread stops at its next check).
pub(crate) fn verify_outputs(
    outputs: &[Finished<'_>],
    key: Option<&store_core::Key>,
    progress: &Progress,
) -> Result<()> {
    // Each check with the rows it reads, what its time is about proportional to: a table's rows; for a
    // file's checks, all its tables' (and their indexes).
    let mut checks: Vec<(u64, Check<'_>)> = outputs
        .iter()
        .flat_map(|o| {
            let file_rows = o.tables.iter().map(|(_, copied, _)| copied).sum();
            let tables = o.tables.iter().map(|t| (t.1, Check::Table(o.path, t)));
            std::iter::once((file_rows, Check::File(o.path, o.schema))).chain(tables)
        })
        .collect();
    checks.sort_by_key(|(rows, _)| std::cmp::Reverse(*rows));
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || -> Result<()> {
        while !failed.load(Ordering::Relaxed) {
            let Some((_, check)) = checks.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            check
                .run(key, progress)
                .inspect_err(|_| failed.store(true, Ordering::Relaxed))?;
        }
        Ok(())
    };
    let (mine, theirs) = std::thread::scope(|scope| {
        let theirs = scope.spawn(work);
        (work(), theirs.join())
    });
    mine?;
    theirs.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Reads a table back through `conn`, a separate read-only connection, in key order, and compares count and
/// digest with what was inserted.
fn verify_table(
    conn: Connection,
    path: &Path,
    (table, copied, digest): &(&'static Table, u64, RowDigest),
) -> Result<()> {
    let ncols = table.columns.len() + 1;
    let mut stmt = conn.prepare(&queries::output_select(table)).at(path)?;
    let mut rows = stmt.query([]).at(path)?;
    let mut read_back = RowDigest::default();
    let mut n = 0u64;
    while let Some(row) = rows.next().at(path)? {
        for i in 0..ncols {
            read_back.value(row.get_ref(i).at(path)?);
        }
        read_back.end_row();
        n += 1;
    }
    if n != *copied {
        return Err(verification_failed(
            path,
            format!("{}: {copied} rows were inserted, {n} read back", table.name),
        ));
    }
    if read_back != *digest {
        return Err(verification_failed(
            path,
            format!("{}: the rows read back differ from the rows inserted", table.name),
        ));
    }
    Ok(())
}

/// The file as a whole, read through `conn`: header fields, `quick_check`, `foreign_key_check`.
fn verify_file(conn: Connection, path: &Path, schema: &Schema) -> Result<()> {
    let (version, app_id): (u32, i32) = conn
        .query_row(queries::LEGACY_HEADER, [], |r| Ok((r.get(0)?, r.get(1)?)))
        .at(path)?;
    if version != schema.end_version() || app_id != schema.application_id {
        return Err(verification_failed(
            path,
            format!(
                "user_version {version} / application_id {app_id:#x}, expected {} / {:#x}",
                schema.end_version(),
                schema.application_id
            ),
        ));
    }
    let problems = store_core::check::quick_check(&conn).at(path)?;
    if !problems.is_empty() {
        return Err(verification_failed(
            path,
            format!("quick_check: {}", problems.join("; ")),
        ));
    }
    let violations = store_core::check::foreign_key_violations(&conn).at(path)?;
    if !violations.is_empty() {
        let shown: Vec<String> = violations.iter().take(5).map(|v| v.to_string()).collect();
        return Err(verification_failed(
            path,
            format!(
                "foreign_key_check: {} violation(s): {}",
                violations.len(),
                shown.join("; ")
            ),
        ));
    }
    conn.close()
        .map_err(|(_, e)| SplitError::Store(store_core::Error::from_sqlite(path, e)))
}

#[cfg(test)]
mod tests {
    use rusqlite::types::ValueRef;

    use super::*;

    /// A config.db with two projects, and what was inserted in it as the copy would have recorded it.
    fn finished_config(dir: &Path) -> (std::path::PathBuf, (&'static Table, u64, RowDigest)) {
        let path = dir.join("config.db");
        let options = store_core::OpenOptions {
            temporary_file: true,
            ..Default::default()
        };
        let mut conn = store_core::OwnerConnection::open_with(&path, &config_store::SCHEMA, &options).unwrap();
        let rows = [(1, "alpha"), (2, "beta")];
        let mut digest = RowDigest::default();
        conn.write(|tx| {
            for (id, name) in rows {
                tx.execute(
                    "INSERT INTO projects (id, name, color, created_at_ms, archived) VALUES (?1, ?2, NULL, 5, 0)",
                    rusqlite::params![id, name],
                )?;
                let values = [
                    ValueRef::Integer(id),
                    ValueRef::Text(name.as_bytes()),
                    ValueRef::Null,
                    ValueRef::Integer(5),
                    ValueRef::Integer(0),
                ];
                values.iter().for_each(|v| digest.value(*v));
                digest.end_row();
            }
            Ok(())
        })
        .unwrap();
        drop(conn);
        (path, (queries::table("projects").unwrap(), rows.len() as u64, digest))
    }

    fn verify(path: &Path, expected: &(&'static Table, u64, RowDigest)) -> Result<()> {
        let outputs = [Finished {
            path,
            schema: &config_store::SCHEMA,
            tables: vec![expected],
        }];
        verify_outputs(&outputs, None, &Progress::new(None))
    }

    #[test]
    fn what_was_inserted_passes_and_any_difference_fails_naming_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let (path, expected) = finished_config(dir.path());
        verify(&path, &expected).unwrap();

        let (table, copied, digest) = expected;
        let err = verify(&path, &(table, copied + 1, digest)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "verification of {} failed: projects: 3 rows were inserted, 2 read back. What to do: nothing was \
                 put in place; check the disk (dmesg, free space) and run again; if it repeats, report it with \
                 the --json output",
                path.display()
            )
        );

        // One value changed in the file behind the copy's back.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE projects SET name = 'gamma' WHERE id = 2", [])
            .unwrap();
        let err = verify(&path, &expected).unwrap_err();
        assert!(
            err.to_string()
                .contains("projects: the rows read back differ from the rows inserted"),
            "{err}"
        );
    }
}
