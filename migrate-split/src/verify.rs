//! Verification of a loaded output before anything is put in place: every row read back through a
//! separate read-only connection and compared with what was inserted (count and digest, in key order),
//! then the file as a whole (header fields, `quick_check`, `foreign_key_check`).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use store_core::{Schema, SqliteResultExt};

use crate::digest::RowDigest;
use crate::error::{Result, SplitError};
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

/// Reads every table back through a separate read-only connection, in key order, and compares count and
/// digest with what was inserted.
pub(crate) fn verify_rows(
    path: &Path,
    expected: &[&(&Table, u64, RowDigest)],
    key: Option<&store_core::Key>,
) -> Result<()> {
    let conn = open_read_only(path, key)?;
    for (table, copied, digest) in expected.iter().copied() {
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
    }
    Ok(())
}

/// The file as a whole: header fields, `quick_check`, `foreign_key_check`.
pub(crate) fn verify_file(path: &Path, schema: &Schema, key: Option<&store_core::Key>) -> Result<()> {
    let conn = open_read_only(path, key)?;
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
