//! Typed access to settings, one statement per function. Values pass through here only as
//! [`StoredValue`], whose `Debug` never shows them.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params};
use store_core::conn_ext::in_table;
use store_core::time::get_opt_time;

use super::queries;
use super::{SettingInfo, StoredValue};

fn info_row(row: &Row<'_>) -> rusqlite::Result<SettingInfo> {
    in_table("settings", row, |row| {
        Ok(SettingInfo {
            key: row.get(0)?,
            secret: row.get::<_, Option<i64>>(1)?.unwrap_or(0) != 0,
            updated_at: get_opt_time(row, 2)?,
        })
    })
}

pub(crate) fn upsert(
    conn: &Connection,
    key: &str,
    json: &str,
    updated_at_ms: i64,
    secret: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::UPSERT_SETTING)?
        .execute(params![key, json, updated_at_ms, secret])
        .map(drop)
}

/// The stored value of `key`: `None` if there is no such key. The column is read as whatever SQLite holds
/// (legacy files may hold any type in it), never through a conversion that could quote it in an error.
pub(crate) fn value(conn: &Connection, key: &str) -> rusqlite::Result<Option<StoredValue>> {
    let raw: Option<Value> = conn
        .prepare_cached(queries::SELECT_VALUE)?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(raw.map(StoredValue::from_column))
}

pub(crate) fn delete(conn: &Connection, key: &str) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached(queries::DELETE_SETTING)?.execute([key])? > 0)
}

pub(crate) fn infos(conn: &Connection) -> rusqlite::Result<Vec<SettingInfo>> {
    conn.prepare_cached(queries::SELECT_INFOS)?
        .query_map([], info_row)?
        .collect()
}

pub(crate) fn info(conn: &Connection, key: &str) -> rusqlite::Result<Option<SettingInfo>> {
    conn.prepare_cached(queries::SELECT_INFO)?
        .query_row([key], info_row)
        .optional()
}
