//! Times at the API are `chrono::DateTime<Utc>`; in both files they are INTEGER Unix epoch milliseconds, UTC.
//! Every column holding one is named `*_ms` so nobody mistakes it for text or seconds.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::Type;

/// A time as stored: Unix epoch milliseconds, UTC.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time back as `DateTime<Utc>`, or `None` if it is outside chrono's range.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Reads a NOT NULL `*_ms` column as `DateTime<Utc>`; an out-of-range value is a conversion error naming
/// the column, not a panic.
pub fn get_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let ms: i64 = row.get(idx)?;
    from_ms(ms).ok_or_else(|| out_of_range(idx, ms))
}

/// Reads a nullable `*_ms` column.
pub fn get_opt_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(idx)? {
        None => Ok(None),
        Some(ms) => from_ms(ms).map(Some).ok_or_else(|| out_of_range(idx, ms)),
    }
}

fn out_of_range(idx: usize, ms: i64) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Integer,
        format!("{ms} ms since the Unix epoch is outside the representable range of times").into(),
    )
}
