//! Times at the API are `chrono::DateTime<Utc>`; in both files they are INTEGER Unix epoch milliseconds, UTC.
//! Every column holding one is named `*_ms` so nobody mistakes it for text or seconds.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::Type;
use serde::{Deserialize, Serialize};

/// A time as stored: Unix epoch milliseconds, UTC.
pub fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A stored time back as `DateTime<Utc>`, or `None` if it is outside chrono's range.
pub fn from_ms(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// The stored times [`from_ms`] maps (chrono's range): a `*_ms` column holding another is damage.
pub fn ms_range() -> std::ops::RangeInclusive<i64> {
    DateTime::<Utc>::MIN_UTC.timestamp_millis()..=DateTime::<Utc>::MAX_UTC.timestamp_millis()
}

/// A stored time as a user reads it: RFC 3339 in UTC, to the second (empty if outside chrono's range).
pub fn show_ms(ms: i64) -> String {
    from_ms(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// A time in a message, to the second: `2026-12-01 16:27:40 UTC` (how backups' names are told apart).
pub fn show_utc(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
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

/// A half-open time range `[from, to)`. `None` leaves that side unbounded. What a time in the range means
/// (a row's start, or any overlap) is said by the function that takes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeRange {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

impl TimeRange {
    /// Everything.
    pub fn all() -> TimeRange {
        TimeRange { from: None, to: None }
    }

    /// `[from, to)`.
    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> TimeRange {
        TimeRange {
            from: Some(from),
            to: Some(to),
        }
    }

    /// `[from, ∞)`.
    pub fn since(from: DateTime<Utc>) -> TimeRange {
        TimeRange {
            from: Some(from),
            to: None,
        }
    }

    /// `(-∞, to)`.
    pub fn until(to: DateTime<Utc>) -> TimeRange {
        TimeRange {
            from: None,
            to: Some(to),
        }
    }

    /// Whether `t` is in the range.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|end| t < end)
    }

    /// Whether no time is in the range (`from >= to`).
    pub fn is_empty(&self) -> bool {
        matches!((self.from, self.to), (Some(f), Some(t)) if f >= t)
    }

    /// The bounds as SQL binds them, in epoch milliseconds. Unbounded sides become `i64::MIN`/`i64::MAX`,
    /// so one statement (and one index range scan) serves every range; chrono's latest time is far below
    /// `i64::MAX` ms.
    pub fn bounds_ms(&self) -> (i64, i64) {
        (self.from.map_or(i64::MIN, to_ms), self.to.map_or(i64::MAX, to_ms))
    }
}
