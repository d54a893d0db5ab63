//! Typed access to calendar subscriptions and events, one statement per function.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use store_core::TimeRange;
use store_core::conn_ext::in_table;
use store_core::time::{get_opt_time, get_time, to_ms};

use super::queries;
use super::{CalendarEvent, CalendarUrl, NewCalendarEvent, Subscription};

fn subscription_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    in_table("calendar_subscriptions", row, |row| {
        Ok(Subscription {
            id: row.get(0)?,
            name: row.get(1)?,
            url: CalendarUrl::new(row.get::<_, String>(2)?),
            color: row.get(3)?,
            last_synced_at: get_opt_time(row, 4)?,
            enabled: row.get::<_, i64>(5)? != 0,
        })
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<CalendarEvent> {
    in_table("calendar_events", row, |row| {
        Ok(CalendarEvent {
            id: row.get(0)?,
            subscription_id: row.get(1)?,
            uid: row.get(2)?,
            title: row.get(3)?,
            start_time: get_time(row, 4)?,
            end_time: get_opt_time(row, 5)?,
            project_id: row.get(6)?,
        })
    })
}

pub(crate) fn insert_subscription(
    conn: &Connection,
    name: &str,
    url: &str,
    color: Option<&str>,
    enabled: bool,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(queries::INSERT_SUBSCRIPTION)?
        .execute(params![name, url, color, enabled])?;
    Ok(conn.last_insert_rowid())
}

pub(crate) fn subscription(conn: &Connection, id: i64) -> rusqlite::Result<Option<Subscription>> {
    conn.prepare_cached(queries::SELECT_SUBSCRIPTION)?
        .query_row([id], subscription_row)
        .optional()
}

pub(crate) fn subscriptions(conn: &Connection) -> rusqlite::Result<Vec<Subscription>> {
    conn.prepare_cached(queries::SELECT_SUBSCRIPTIONS)?
        .query_map([], subscription_row)?
        .collect()
}

/// Sets the fields given (`color: Some(None)` clears it); returns whether the subscription exists.
pub(crate) fn update_subscription(
    conn: &Connection,
    id: i64,
    name: Option<&str>,
    url: Option<&str>,
    color: Option<Option<&str>>,
    enabled: Option<bool>,
) -> rusqlite::Result<bool> {
    let changed = conn.prepare_cached(queries::UPDATE_SUBSCRIPTION)?.execute(params![
        id,
        name,
        url,
        color.is_some(),
        color.flatten(),
        enabled,
    ])?;
    Ok(changed > 0)
}

pub(crate) fn delete_subscription(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached(queries::DELETE_SUBSCRIPTION)?.execute([id])? > 0)
}

/// Returns whether the subscription exists.
pub(crate) fn set_last_synced(conn: &Connection, id: i64, at: DateTime<Utc>) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(queries::SET_LAST_SYNCED)?
        .execute(params![id, to_ms(at)])?
        > 0)
}

pub(crate) fn delete_events_of(conn: &Connection, subscription_id: i64) -> rusqlite::Result<usize> {
    conn.prepare_cached(queries::DELETE_EVENTS_OF)?
        .execute([subscription_id])
}

pub(crate) fn insert_event(conn: &Connection, subscription_id: i64, event: &NewCalendarEvent) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_EVENT)?
        .execute(params![
            subscription_id,
            event.uid,
            event.title,
            to_ms(event.start_time),
            event.end_time.map(to_ms),
            event.project_id,
        ])
        .map(drop)
}

/// The events overlapping `range` in config.db at schema `version` (see `queries::EVENTS_OVERLAPPING`),
/// oldest first (by start, then id).
pub(crate) fn events_between(
    conn: &Connection,
    range: &TimeRange,
    version: u32,
) -> rusqlite::Result<Vec<CalendarEvent>> {
    let (from, to) = range.bounds_ms();
    let sql = for_version(
        version,
        queries::EVENTS_OVERLAPPING_SCHEMA_2,
        queries::EVENTS_OVERLAPPING,
    );
    oldest_first(conn.prepare_cached(sql)?.query_map(params![from, to], event_row)?)
}

/// As [`events_between`], only project `project_id`'s.
pub(crate) fn project_events_between(
    conn: &Connection,
    project_id: i64,
    range: &TimeRange,
    version: u32,
) -> rusqlite::Result<Vec<CalendarEvent>> {
    let (from, to) = range.bounds_ms();
    let sql = for_version(
        version,
        queries::PROJECT_EVENTS_OVERLAPPING_SCHEMA_2,
        queries::PROJECT_EVENTS_OVERLAPPING,
    );
    oldest_first(
        conn.prepare_cached(sql)?
            .query_map(params![from, to, project_id], event_row)?,
    )
}

/// The statement of schema 2 on a file older than the index of long events, else the two-part one.
fn for_version(version: u32, schema_2: &'static str, with_long_index: &'static str) -> &'static str {
    if version < crate::schema::LONG_EVENTS_VERSION {
        schema_2
    } else {
        with_long_index
    }
}

/// The events read, by start then id: the reads have no ORDER BY (`queries::EVENTS_OVERLAPPING` says why).
fn oldest_first(rows: impl Iterator<Item = rusqlite::Result<CalendarEvent>>) -> rusqlite::Result<Vec<CalendarEvent>> {
    let mut events = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    events.sort_by_key(|e| (e.start_time, e.id));
    Ok(events)
}
