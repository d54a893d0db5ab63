//! Legacy times to INTEGER epoch milliseconds UTC.
//!
//! The legacy code wrote times in three styles, sometimes within one table:
//! - ISO-8601 / RFC 3339 from JavaScript's `toISOString()`: `2024-01-01T10:00:00.000Z`; accepted with any
//!   number of fractional digits or none, and with a `Z` or a `+HH:MM`/`-HH:MM` (or `+HHMM`) offset;
//! - SQLite's `CURRENT_TIMESTAMP` style, which is UTC: `2024-01-01 10:00:00`, optionally with a fraction;
//!   a zone suffix is accepted here too, and a time without a zone is UTC (SQLite's own rule for its
//!   date and time functions, <https://sqlite.org/lang_datefunc.html>);
//! - epoch milliseconds written as text (`1704103200000`), or stored as an integer.
//!
//! Fractions finer than a millisecond are truncated (toward the past), as chrono's `timestamp_millis` does.
//! Anything else is not a time: an empty string, surrounding spaces, a date without a time, an impossible
//! date (`2024-02-30`), a real number, a blob. Such a row is rejected, never guessed at.

use rusqlite::types::ValueRef;

/// Why a value is not a time. The message never repeats the value (the caller decides what may be shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotATime {
    Empty,
    Real,
    Blob,
    /// Text in none of the three styles.
    Unrecognised,
    /// A well-formed time whose fields are out of range (month 13, February 30, hour 25).
    OutOfRange,
}

impl std::fmt::Display for NotATime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotATime::Empty => "an empty string",
            NotATime::Real => "a floating-point number",
            NotATime::Blob => "a blob",
            NotATime::Unrecognised => "text in none of the legacy time styles",
            NotATime::OutOfRange => "a date or time with a field out of range",
        })
    }
}

/// Milliseconds since the Unix epoch that chrono can represent (about +-262,000 years).
const MAX_ABS_MS: i64 = 8_210_266_876_799_999;

/// Converts a legacy time value: `Ok(None)` for NULL, `Ok(Some(ms))` for a time.
pub fn to_epoch_ms(value: ValueRef<'_>) -> Result<Option<i64>, NotATime> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(ms) if ms.abs() <= MAX_ABS_MS => Ok(Some(ms)),
        ValueRef::Integer(_) => Err(NotATime::OutOfRange),
        ValueRef::Real(_) => Err(NotATime::Real),
        ValueRef::Blob(_) => Err(NotATime::Blob),
        ValueRef::Text(t) => parse_text(t).map(Some),
    }
}

/// Parses one text time in any of the legacy styles.
pub fn parse_text(t: &[u8]) -> Result<i64, NotATime> {
    if t.is_empty() {
        return Err(NotATime::Empty);
    }
    let digits = t.strip_prefix(b"-").unwrap_or(t);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        return parse_epoch_ms(t);
    }
    parse_datetime(t)
}

fn parse_epoch_ms(t: &[u8]) -> Result<i64, NotATime> {
    // At most 16 digits: anything longer is past chrono's range anyway, and parsing cannot overflow.
    if t.len() > 17 {
        return Err(NotATime::OutOfRange);
    }
    let s = std::str::from_utf8(t).map_err(|_| NotATime::Unrecognised)?;
    let ms: i64 = s.parse().map_err(|_| NotATime::Unrecognised)?;
    if ms.abs() > MAX_ABS_MS {
        return Err(NotATime::OutOfRange);
    }
    Ok(ms)
}

/// `YYYY-MM-DD[T t ]HH:MM:SS[.f+][Z z +HH:MM -HH:MM +HHMM -HHMM]`.
fn parse_datetime(t: &[u8]) -> Result<i64, NotATime> {
    if t.len() < 19 {
        return Err(NotATime::Unrecognised);
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, NotATime> {
        t[range].iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(NotATime::Unrecognised)
            }
        })
    };
    let punct = |i: usize, allowed: &[u8]| {
        if allowed.contains(&t[i]) {
            Ok(())
        } else {
            Err(NotATime::Unrecognised)
        }
    };
    let year = num(0..4)?;
    punct(4, b"-")?;
    let month = num(5..7)?;
    punct(7, b"-")?;
    let day = num(8..10)?;
    punct(10, b"Tt ")?;
    let hour = num(11..13)?;
    punct(13, b":")?;
    let minute = num(14..16)?;
    punct(16, b":")?;
    let second = num(17..19)?;

    let mut i = 19;
    let mut millis = 0i64;
    if t.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < t.len() && t[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return Err(NotATime::Unrecognised);
        }
        for k in 0..3 {
            millis = millis * 10
                + t.get(start + k)
                    .filter(|_| start + k < end)
                    .map_or(0, |b| i64::from(b - b'0'));
        }
        i = end;
    }
    let offset_minutes = match &t[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (two(*h1, *h2)?, two(*m1, *m2)?),
                _ => return Err(NotATime::Unrecognised),
            };
            if h > 23 || m > 59 {
                return Err(NotATime::OutOfRange);
            }
            let total = h * 60 + m;
            if *sign == b'-' { -total } else { total }
        }
        _ => return Err(NotATime::Unrecognised),
    };
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(NotATime::OutOfRange);
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(NotATime::OutOfRange);
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1_000 + millis)
}

fn two(a: u8, b: u8) -> Result<i64, NotATime> {
    if a.is_ascii_digit() && b.is_ascii_digit() {
        Ok(i64::from(a - b'0') * 10 + i64::from(b - b'0'))
    } else {
        Err(NotATime::Unrecognised)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level Date
/// Algorithms", days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime};

    fn ms(s: &str) -> Result<i64, NotATime> {
        parse_text(s.as_bytes())
    }

    fn chrono_ms(s: &str) -> i64 {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return t.timestamp_millis();
        }
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .expect("test input parses")
            .and_utc()
            .timestamp_millis()
    }

    #[test]
    fn the_three_styles_agree_with_chrono() {
        for s in [
            "2024-01-01T10:00:00.000Z",
            "2024-01-01T10:00:00Z",
            "2024-01-01T10:00:00.5Z",
            "2024-01-01T10:00:00.123456789Z",
            "2024-01-01T12:00:00+02:00",
            "2023-12-31T23:30:00.250-05:30",
            "2024-02-29T00:00:00.999z",
            "1969-12-31T23:59:59.999Z",
            "1600-03-01T00:00:00Z",
            "2024-01-01 10:00:00",
            "2024-01-01 10:00:00.42",
            "2100-02-28 23:59:59",
        ] {
            assert_eq!(ms(s), Ok(chrono_ms(s)), "{s}");
        }
        assert_eq!(ms("1704103200000"), Ok(1_704_103_200_000));
        assert_eq!(ms("-1000"), Ok(-1000));
        assert_eq!(ms("2024-01-01T10:00:00.000Z"), ms("1704103200000"));
        assert_eq!(ms("2024-01-01 10:00:00"), ms("1704103200000"));
        assert_eq!(ms("2024-01-01T12:00:00+0200"), ms("1704103200000"));
        assert_eq!(
            to_epoch_ms(ValueRef::Integer(1_704_103_200_000)),
            Ok(Some(1_704_103_200_000))
        );
        assert_eq!(to_epoch_ms(ValueRef::Null), Ok(None));
    }

    #[test]
    fn anything_else_is_not_a_time() {
        for (s, why) in [
            ("", NotATime::Empty),
            ("yesterday", NotATime::Unrecognised),
            ("2024-01-01", NotATime::Unrecognised),
            (" 2024-01-01 10:00:00", NotATime::Unrecognised),
            ("2024-01-01 10:00:00 ", NotATime::Unrecognised),
            ("2024-01-01T10:00:00.Z", NotATime::Unrecognised),
            ("2024-01-01T10:00:00+2", NotATime::Unrecognised),
            ("2024/01/01 10:00:00", NotATime::Unrecognised),
            ("1704103200000ms", NotATime::Unrecognised),
            ("-", NotATime::Unrecognised),
            ("2024-02-30T10:00:00Z", NotATime::OutOfRange),
            ("2023-02-29 10:00:00", NotATime::OutOfRange),
            ("2024-13-01 10:00:00", NotATime::OutOfRange),
            ("2024-01-01 24:00:00", NotATime::OutOfRange),
            ("2024-01-01 23:60:00", NotATime::OutOfRange),
            ("2024-01-01T10:00:00+24:00", NotATime::OutOfRange),
            ("99999999999999999999", NotATime::OutOfRange),
        ] {
            assert_eq!(ms(s), Err(why), "{s:?}");
        }
        assert_eq!(to_epoch_ms(ValueRef::Real(1.5)), Err(NotATime::Real));
        assert_eq!(to_epoch_ms(ValueRef::Blob(b"2024")), Err(NotATime::Blob));
        assert_eq!(to_epoch_ms(ValueRef::Integer(i64::MAX)), Err(NotATime::OutOfRange));
    }
}
