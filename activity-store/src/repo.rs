//! Row types and the typed functions that read and write them on a `rusqlite::Connection`.
//!
//! Times are `DateTime<Utc>` here and INTEGER epoch milliseconds in the file (`store_core::time`). The
//! functions run exactly one statement each (or one per row); transactions are the caller's business:
//! [`ActivityWriter`](crate::ActivityWriter) wraps batches in `BEGIN IMMEDIATE`, [`ActivityReader`](crate::ActivityReader)
//! runs every read in one short read transaction.

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use store_core::TimeRange;
use store_core::conn_ext::in_table;
use store_core::time::{get_opt_time, get_time, to_ms};

use crate::queries;

/// A session to start: what the user is doing, from `start` until it is ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    pub app: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    /// A project of config.db (joined in the application; activity.db does not know projects).
    pub project_id: Option<i64>,
    pub start: DateTime<Utc>,
    pub is_idle: bool,
}

impl NewSession {
    /// A session of `app` starting at `start`, with nothing else known yet: set the other fields with
    /// struct update syntax (`NewSession { project_id: Some(7), ..NewSession::new("editor", now) }`).
    pub fn new(app: impl Into<String>, start: DateTime<Utc>) -> NewSession {
        NewSession {
            app: app.into(),
            title: None,
            url: None,
            domain: None,
            project_id: None,
            start,
            is_idle: false,
        }
    }
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: i64,
    pub app: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub domain: Option<String>,
    pub project_id: Option<i64>,
    pub start: DateTime<Utc>,
    /// `None` while the session is open.
    pub end: Option<DateTime<Utc>>,
    /// Whole seconds from start to end, set when the session is ended.
    pub duration_seconds: Option<i64>,
    pub is_idle: bool,
    /// How it ended; `None` while it is open (or, for a legacy session ended before this was recorded,
    /// never: migration 3 marked every ended session `Ended`).
    pub end_reason: Option<EndReason>,
}

/// An ended session's time and project, as [`ActivityReader::session_spans_overlapping`] reads them: what
/// a sum of the time tracked in an interval needs, without the session's app, title or URL.
///
/// [`ActivityReader::session_spans_overlapping`]: crate::ActivityReader::session_spans_overlapping
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpan {
    pub id: i64,
    pub project_id: Option<i64>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Its writer ended it.
    Ended,
    /// Its writer stopped without ending it (a crash, `kill -9`, a power loss); the next writer closed it
    /// at the time of its last event (or its start, without events).
    Recovered,
}

impl EndReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndReason::Ended => "ended",
            EndReason::Recovered => "recovered",
        }
    }

    fn parse(text: &str) -> Option<EndReason> {
        match text {
            "ended" => Some(EndReason::Ended),
            "recovered" => Some(EndReason::Recovered),
            _ => None,
        }
    }
}

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEvent {
    /// The session it belongs to, if any (not a foreign key: legacy files hold dangling ids).
    pub session_id: Option<i64>,
    pub event_type: String,
    pub app: Option<String>,
    pub title: Option<String>,
    pub url: Option<String>,
    pub at: DateTime<Utc>,
    pub idle_seconds: Option<i64>,
}

impl NewEvent {
    /// An event of `event_type` at `at`, in session `session_id` (if any), with nothing else known yet: set
    /// the other fields with struct update syntax.
    pub fn new(session_id: Option<i64>, event_type: impl Into<String>, at: DateTime<Utc>) -> NewEvent {
        NewEvent {
            session_id,
            event_type: event_type.into(),
            app: None,
            title: None,
            url: None,
            at,
            idle_seconds: None,
        }
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: i64,
    pub session_id: Option<i64>,
    pub event_type: String,
    pub app: Option<String>,
    pub title: Option<String>,
    pub url: Option<String>,
    pub at: DateTime<Utc>,
    pub idle_seconds: Option<i64>,
}

/// Time spent on one project (or on no project: `project_id: None`) by the sessions of a [`TimeRange`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectTotal {
    pub project_id: Option<i64>,
    /// Sum of the sessions' `duration_seconds`; open sessions count 0.
    pub seconds: i64,
    /// Number of sessions, open ones included.
    pub sessions: i64,
}

/// The most recent activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    /// The session that started last.
    pub session: Option<Session>,
    /// The event with the latest time.
    pub event: Option<Event>,
}

/// The highest ids in the file (`None` for an empty table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LastIds {
    pub session_id: Option<i64>,
    pub event_id: Option<i64>,
}

/// Starts a session (one INSERT; an open session is not in the totals yet).
pub(crate) fn insert_session(conn: &Connection, s: &NewSession) -> rusqlite::Result<i64> {
    conn.prepare_cached(queries::INSERT_SESSION)?.insert((
        s.app.as_str(),
        s.title.as_deref(),
        s.url.as_deref(),
        s.domain.as_deref(),
        s.project_id,
        to_ms(s.start),
        s.is_idle,
    ))
}

/// Ends session `id` at `end`, for `reason` (one UPDATE: its trigger adds the session to the totals
/// within the statement). `false` when no open session has that id (nothing changed).
pub(crate) fn end_session(conn: &Connection, id: i64, end: DateTime<Utc>, reason: EndReason) -> rusqlite::Result<bool> {
    let changed = conn
        .prepare_cached(queries::END_SESSION)?
        .execute((id, to_ms(end), reason.as_str()))?;
    Ok(changed == 1)
}

/// The totals key of a project: `(has_project, project_id)`, `(0, 0)` for no project.
fn totals_key(project_id: Option<i64>) -> (bool, i64) {
    (project_id.is_some(), project_id.unwrap_or(0))
}

/// The start of the totals bucket holding `ms` (floor, also before the epoch).
pub(crate) fn bucket_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(queries::TOTALS_BUCKET_MS)
}

/// A session still open: its id, start and the time of its last event, in epoch milliseconds.
pub(crate) struct OpenSession {
    pub id: i64,
    pub start_ms: i64,
    pub last_event_ms: Option<i64>,
}

pub(crate) fn open_sessions(conn: &Connection) -> rusqlite::Result<Vec<OpenSession>> {
    conn.prepare_cached(queries::OPEN_SESSIONS)?
        .query_map([], |r| {
            in_table("activity_sessions", r, |r| {
                Ok(OpenSession {
                    id: r.get(0)?,
                    start_ms: r.get(1)?,
                    last_event_ms: r.get(2)?,
                })
            })
        })?
        .collect()
}

/// Sets migration 4's `activity_totals_on_end` aside for the caller's transaction: returns its exact text
/// for [`put_back_end_trigger`] (`None` when the file has no such trigger: nothing to put back).
pub(crate) fn set_aside_end_trigger(conn: &Connection) -> rusqlite::Result<Option<String>> {
    let sql: Option<String> = conn.query_row(queries::END_TRIGGER_SQL, [], |r| r.get(0)).optional()?;
    if sql.is_some() {
        conn.execute(queries::DROP_END_TRIGGER, [])?;
    }
    Ok(sql)
}

/// Puts back the trigger [`set_aside_end_trigger`] took, as it was.
pub(crate) fn put_back_end_trigger(conn: &Connection, sql: Option<String>) -> rusqlite::Result<()> {
    match sql {
        Some(sql) => conn.execute_batch(&sql),
        None => Ok(()),
    }
}

/// Adds the sessions `ids`, ended while `activity_totals_on_end` was set aside, to the running totals: what
/// the trigger adds one session at a time (the session's bucket, created if missing, and every later
/// bucket of its project), with one range update per bucket that gained sessions instead of one per session.
pub(crate) fn add_ended_to_totals(conn: &Connection, ids: &[i64]) -> rusqlite::Result<()> {
    struct Gain {
        key: (bool, i64),
        bucket_ms: i64,
        sessions: i64,
        seconds: i64,
    }
    let ids = serde_json::to_string(ids).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let gains = conn
        .prepare(queries::ENDED_BY_BUCKET)?
        .query_map([ids], |r| {
            Ok(Gain {
                key: (r.get(0)?, r.get(1)?),
                bucket_ms: r.get(2)?,
                sessions: r.get(3)?,
                seconds: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<Gain>>>()?;
    let mut before = conn.prepare_cached(queries::TOTALS_BEFORE)?;
    let mut insert = conn.prepare_cached(queries::INSERT_TOTALS_BUCKET)?;
    let mut add = conn.prepare_cached(queries::ADD_TO_TOTALS)?;
    for project in gains.chunk_by(|a, b| a.key == b.key) {
        let key = project[0].key;
        // Missing buckets first, each holding the totals before it, as the trigger creates them.
        for gain in project {
            let (sessions, seconds) = totals_before(&mut before, key, gain.bucket_ms)?;
            insert.execute((key.0, key.1, gain.bucket_ms, sessions, seconds))?;
        }
        // Then every bucket from the first gain on rises by all the gains at or before it.
        let (mut sessions, mut seconds) = (0i64, 0i64);
        for (i, gain) in project.iter().enumerate() {
            sessions += gain.sessions;
            seconds += gain.seconds;
            let until = project.get(i + 1).map_or(i64::MAX, |next| next.bucket_ms);
            add.execute((key.0, key.1, gain.bucket_ms, until, sessions, seconds))?;
        }
    }
    Ok(())
}

/// Recomputes every running total from the ended sessions, replacing what `activity_totals` holds: after a
/// bulk load that went around the triggers (migrate-split's outputs). Where the connection's temporary
/// storage is on disk, one SQL statement sorts the buckets ([`queries::INSERT_TOTALS_SORTED`]; the sort
/// spills to files). Elsewhere (in memory, as on an encrypted file, where a temporary file would not be
/// encrypted) that sort would be held whole, 24.5 MB for the 511k buckets of a 1 GB split and growing with
/// the history: the sessions are read instead in the totals' key order from an index and summed as they
/// come, one bucket row written as each bucket closes, nothing sorted and nothing held but the bucket being
/// summed. Measured on that split: 0.82 s sorted (plaintext), 4.4 s summed from the index (encrypted: each
/// session's row looked up and decrypted), 1.25 s summed from the index without encryption. A session whose
/// project id or duration is not an integer (a legacy file's, kept by the split as it was) sends the whole
/// computation back to the SQL, which applies SQLite's own rules to it. It writes many rows: the caller runs
/// it inside its write transaction (the split's load), so a failure leaves nothing.
pub fn rebuild_totals(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(queries::CLEAR_TOTALS, [])?;
    let temp_store: i64 = conn.query_row(queries::TEMP_STORE, [], |r| r.get(0))?;
    if temp_store == 1 || !sum_totals_from_index(conn)? {
        conn.execute(queries::CLEAR_TOTALS, [])?;
        conn.execute(queries::INSERT_TOTALS_SORTED, [])?;
    }
    Ok(())
}

/// [`rebuild_totals`] without a sort. Returns false, having written part of the totals, at a session whose
/// project id or duration is not an integer (a legacy file's text, kept by the split as it was) or whose
/// seconds overflow: those are summed by SQLite's own rules, in SQL.
fn sum_totals_from_index(conn: &Connection) -> rusqlite::Result<bool> {
    let mut insert = conn.prepare(queries::INSERT_TOTALS_ROW)?;
    let mut read = conn.prepare(queries::ENDED_SESSIONS_BY_PROJECT)?;
    let mut rows = read.query([])?;
    // The bucket being summed: its project's key, its start, and the project's running totals up to it.
    let mut open: Option<((bool, i64), i64)> = None;
    let (mut sessions, mut seconds) = (0i64, 0i64);
    while let Some(row) = rows.next()? {
        let (project_id, start_ms, duration) = match (row.get_ref(0)?, row.get_ref(1)?, row.get_ref(2)?) {
            (ValueRef::Null, ValueRef::Integer(s), ValueRef::Integer(d)) => (None, s, d),
            (ValueRef::Integer(p), ValueRef::Integer(s), ValueRef::Integer(d)) => (Some(p), s, d),
            _ => return Ok(false),
        };
        let (key, bucket_ms) = (totals_key(project_id), bucket_of(start_ms));
        if let Some((open_key, open_bucket)) = open.filter(|&o| o != (key, bucket_ms)) {
            insert.execute((open_key.0, open_key.1, open_bucket, sessions, seconds))?;
            if open_key != key {
                (sessions, seconds) = (0, 0);
            }
        }
        open = Some((key, bucket_ms));
        sessions += 1;
        let Some(sum) = seconds.checked_add(duration) else {
            return Ok(false);
        };
        seconds = sum;
    }
    if let Some((key, bucket_ms)) = open {
        insert.execute((key.0, key.1, bucket_ms, sessions, seconds))?;
    }
    Ok(true)
}

/// Sessions and seconds.
type Counted = (i64, i64);

/// A bucket of one project's running totals: (has_project, project_id, bucket_ms), in the totals' key order.
type BucketKey = (bool, i64, i64);

/// Where the running totals disagree with the ended sessions the file holds ([`store_core::DerivedCheck`]),
/// compared bucket by bucket from the first bucket after which nothing was pruned: before it the totals keep
/// what retention deleted. A file before the totals (schema 4) has none to compare. The sessions since and
/// every row of the totals are read once, both in key order, side by side (memory does not grow with them).
pub fn totals_disagreement(conn: &Connection) -> rusqlite::Result<Option<store_core::Disagreement>> {
    let Some(since) = unpruned_since(conn)? else {
        return Ok(None);
    };
    let mut sessions = conn.prepare(queries::ENDED_SESSIONS_SINCE)?;
    let mut held = HeldBuckets::new(sessions.query([since])?);
    let mut next_held = held.next()?;
    let mut totals = conn.prepare(queries::TOTALS_IN_KEY_ORDER)?;
    let mut rows = totals.query([])?;
    let (mut buckets, mut counted, mut stored) = (0u64, (0i64, 0i64), (0i64, 0i64));
    let mut differ = |added: Counted, held: Counted| {
        if added != held {
            buckets += 1;
            counted = (counted.0.saturating_add(added.0), counted.1.saturating_add(added.1));
            stored = (stored.0.saturating_add(held.0), stored.1.saturating_add(held.1));
        }
    };
    let mut last: Option<((bool, i64), Counted)> = None;
    while let Some(row) = rows.next()? {
        // A key or count that is not an integer comes from a session that is not one either (a legacy file's
        // text), which `HeldBuckets` finds only before `since`: such rows are not compared.
        let (ValueRef::Integer(has_project), ValueRef::Integer(project_id), ValueRef::Integer(bucket_ms)) =
            (row.get_ref(0)?, row.get_ref(1)?, row.get_ref(2)?)
        else {
            continue;
        };
        let (ValueRef::Integer(sessions), ValueRef::Integer(seconds)) = (row.get_ref(3)?, row.get_ref(4)?) else {
            continue;
        };
        let key = (has_project != 0, project_id, bucket_ms);
        let before = match last {
            Some(((h, p), running)) if (h, p) == (key.0, key.1) => running,
            _ => (0, 0),
        };
        last = Some(((key.0, key.1), (sessions, seconds)));
        if bucket_ms < since {
            continue;
        }
        // Buckets of sessions the totals have no row for, then this row's bucket.
        let mut here = (0, 0);
        loop {
            match next_held {
                Held::NotComparable => return Ok(None),
                Held::Bucket(k, c) if k < key => differ((0, 0), c),
                Held::Bucket(k, c) if k == key => here = c,
                Held::Bucket(..) | Held::End => break,
            }
            next_held = held.next()?;
        }
        differ(
            (sessions.saturating_sub(before.0), seconds.saturating_sub(before.1)),
            here,
        );
    }
    loop {
        match next_held {
            Held::NotComparable => return Ok(None),
            Held::Bucket(_, c) => differ((0, 0), c),
            Held::End => break,
        }
        next_held = held.next()?;
    }
    Ok((buckets > 0).then(|| store_core::Disagreement {
        since_ms: since,
        detail: format!(
            "its running totals count {} ended session(s) ({} s) in {buckets} quarter hour(s) of a project from {} \
             on, where it holds {} ({} s)",
            counted.0,
            counted.1,
            store_core::time::show_ms(since),
            stored.0,
            stored.1
        ),
    }))
}

/// Recounts the running totals from the bucket [`totals_disagreement`] compares from, when they disagree: each
/// project's rows from there on are written again as its running totals before it plus the ended sessions
/// held since. Inside the caller's write transaction. Returns what disagreed (`None`: nothing written).
pub fn recount_totals(conn: &Connection) -> rusqlite::Result<Option<store_core::Disagreement>> {
    let Some(found) = totals_disagreement(conn)? else {
        return Ok(None);
    };
    conn.execute(queries::CLEAR_TOTALS_SINCE, [found.since_ms])?;
    let mut sessions = conn.prepare(queries::ENDED_SESSIONS_SINCE)?;
    let mut held = HeldBuckets::new(sessions.query([found.since_ms])?);
    let mut before = conn.prepare(queries::TOTALS_BEFORE)?;
    let mut insert = conn.prepare(queries::INSERT_TOTALS_ROW)?;
    let mut last: Option<((bool, i64), Counted)> = None;
    // Every session since was read whole by the comparison in this transaction: no value to refuse.
    while let Held::Bucket((has_project, project_id, bucket_ms), (sessions, seconds)) = held.next()? {
        let running = match last {
            Some((k, running)) if k == (has_project, project_id) => running,
            _ => before
                .query_row((has_project, project_id, found.since_ms), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?
                .unwrap_or((0, 0)),
        };
        let running = (running.0.saturating_add(sessions), running.1.saturating_add(seconds));
        insert.execute((has_project, project_id, bucket_ms, running.0, running.1))?;
        last = Some(((has_project, project_id), running));
    }
    Ok(Some(found))
}

/// The first bucket from which nothing was pruned: the one after the bucket of [`queries::UNPRUNED_SINCE`], or
/// of the last salvage when later. `None` when there is nothing to compare: no totals (a file before schema 4)
/// or no ended session.
fn unpruned_since(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    let version: u32 = store_core::conn_ext::ConnExt::pragma_value(conn, "user_version")?;
    if version < crate::schema::TOTALS_VERSION {
        return Ok(None);
    }
    let unpruned: Option<i64> = conn.query_row(queries::UNPRUNED_SINCE, [], |r| r.get(0))?;
    let salvaged: Option<i64> = conn.query_row(queries::LAST_SALVAGE, [store_core::salvage::SALVAGE_EVENT], |r| {
        r.get(0)
    })?;
    Ok(unpruned
        .max(salvaged)
        .and_then(|from| bucket_of(from).checked_add(queries::TOTALS_BUCKET_MS)))
}

/// What [`HeldBuckets::next`] read.
enum Held {
    /// The ended sessions of one bucket of a project: how many, and their seconds.
    Bucket(BucketKey, Counted),
    /// A session with a project id, start or duration that is not an integer (a legacy file's text, kept by
    /// the split as it was, which the totals hold as SQLite converted it), or seconds past `i64`: not compared.
    NotComparable,
    End,
}

/// The ended sessions of [`queries::ENDED_SESSIONS_SINCE`] summed per bucket, one bucket at a time.
struct HeldBuckets<'s> {
    rows: rusqlite::Rows<'s>,
    /// The bucket being summed.
    open: Option<(BucketKey, Counted)>,
}

impl<'s> HeldBuckets<'s> {
    fn new(rows: rusqlite::Rows<'s>) -> HeldBuckets<'s> {
        HeldBuckets { rows, open: None }
    }

    fn next(&mut self) -> rusqlite::Result<Held> {
        while let Some(row) = self.rows.next()? {
            let project_id = match row.get_ref(0)? {
                ValueRef::Null => None,
                ValueRef::Integer(p) => Some(p),
                _ => return Ok(Held::NotComparable),
            };
            let (ValueRef::Integer(start_ms), duration) = (row.get_ref(1)?, row.get_ref(2)?) else {
                return Ok(Held::NotComparable);
            };
            let duration = match duration {
                ValueRef::Null => 0,
                ValueRef::Integer(d) => d,
                _ => return Ok(Held::NotComparable),
            };
            let (has_project, project_id) = totals_key(project_id);
            let key = (has_project, project_id, bucket_of(start_ms));
            match &mut self.open {
                Some((open, (sessions, seconds))) if *open == key => {
                    let Some(sum) = seconds.checked_add(duration) else {
                        return Ok(Held::NotComparable);
                    };
                    (*sessions, *seconds) = (*sessions + 1, sum);
                }
                open => {
                    if let Some((done, counted)) = open.replace((key, (1, duration))) {
                        return Ok(Held::Bucket(done, counted));
                    }
                }
            }
        }
        Ok(self
            .open
            .take()
            .map_or(Held::End, |(key, counted)| Held::Bucket(key, counted)))
    }
}

/// The event insert statement, prepared once for a run of rows.
pub(crate) struct EventInserter<'c> {
    stmt: CachedStatement<'c>,
}

impl<'c> EventInserter<'c> {
    pub(crate) fn new(conn: &'c Connection) -> rusqlite::Result<EventInserter<'c>> {
        Ok(EventInserter {
            stmt: conn.prepare_cached(queries::INSERT_EVENT)?,
        })
    }

    /// Inserts one event and returns its id.
    pub(crate) fn insert(&mut self, e: &NewEvent) -> rusqlite::Result<i64> {
        self.stmt.insert((
            e.session_id,
            e.event_type.as_str(),
            e.app.as_deref(),
            e.title.as_deref(),
            e.url.as_deref(),
            to_ms(e.at),
            e.idle_seconds,
        ))
    }
}

pub(crate) fn sessions_in_range(conn: &Connection, range: &TimeRange, limit: u32) -> rusqlite::Result<Vec<Session>> {
    let (from, to) = range.bounds_ms();
    let mut stmt = conn.prepare_cached(queries::SESSIONS_IN_RANGE)?;
    let rows = stmt.query_map((from, to, i64::from(limit)), session_from_row)?;
    rows.collect()
}

pub(crate) fn sessions_of_project(
    conn: &Connection,
    project_id: i64,
    range: &TimeRange,
    limit: u32,
) -> rusqlite::Result<Vec<Session>> {
    let (from, to) = range.bounds_ms();
    let mut stmt = conn.prepare_cached(queries::SESSIONS_OF_PROJECT)?;
    let rows = stmt.query_map((project_id, from, to, i64::from(limit)), session_from_row)?;
    rows.collect()
}

pub(crate) fn sessions_overlapping(conn: &Connection, range: &TimeRange) -> rusqlite::Result<Vec<Session>> {
    overlapping(conn, range, queries::SESSIONS_OVERLAPPING, session_from_row)
}

pub(crate) fn session_spans_overlapping(conn: &Connection, range: &TimeRange) -> rusqlite::Result<Vec<SessionSpan>> {
    overlapping(conn, range, queries::SESSION_SPANS_OVERLAPPING, |r| {
        in_table("activity_sessions", r, |r| {
            Ok(SessionSpan {
                id: r.get(0)?,
                project_id: r.get(1)?,
                start: get_time(r, 2)?,
                end: get_time(r, 3)?,
            })
        })
    })
}

/// The rows `sql` selects for `range` (bound as `?1`, `?2`): none for an empty range (its bounds swapped,
/// or equal), which holds no time for a session to overlap; the queries alone would still return every
/// session spanning it, where every other range read returns nothing.
fn overlapping<T>(
    conn: &Connection,
    range: &TimeRange,
    sql: &str,
    row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let (from, to) = range.bounds_ms();
    if from >= to {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map((from, to), row)?;
    rows.collect()
}

pub(crate) fn events_of_session(conn: &Connection, session_id: i64, limit: u32) -> rusqlite::Result<Vec<Event>> {
    let mut stmt = conn.prepare_cached(queries::EVENTS_OF_SESSION)?;
    let rows = stmt.query_map((session_id, i64::from(limit)), event_from_row)?;
    rows.collect()
}

/// How a range `[from, to)` in milliseconds is answered: whole buckets from the running totals of ended
/// sessions plus the open sessions started in them, and the sessions of the partial buckets at its edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Whole buckets `[from, to)`: bucket boundaries (`i64::MIN`/`i64::MAX` for an unbounded side).
    pub whole: Option<(i64, i64)>,
    /// Sessions aggregated one by one, at most two stretches shorter than a bucket each.
    pub edges: [Option<(i64, i64)>; 2],
}

impl Plan {
    /// The plan for a file at schema `version`: from the totals when it has them, else (a file an older
    /// daemon keeps, [`crate::schema::TOTALS_VERSION`]) the whole range from the sessions, as readers of
    /// that version did.
    pub(crate) fn of(range: &TimeRange, version: u32) -> Plan {
        let (from, to) = range.bounds_ms();
        let mut plan = Plan {
            whole: None,
            edges: [None, None],
        };
        if from >= to {
            return plan;
        }
        if version < crate::schema::TOTALS_VERSION {
            plan.edges[0] = Some((from, to));
            return plan;
        }
        let width = queries::TOTALS_BUCKET_MS;
        // The first boundary at or after `from`, the last at or before `to` (unbounded sides stay so).
        let first = match from {
            i64::MIN => i64::MIN,
            f => bucket_of(f)
                .checked_add(if f == bucket_of(f) { 0 } else { width })
                .unwrap_or(i64::MAX),
        };
        let last = if to == i64::MAX { i64::MAX } else { bucket_of(to) };
        if first > last {
            // Inside one bucket: no whole bucket at all.
            plan.edges[0] = Some((from, to));
            return plan;
        }
        if first < last {
            plan.whole = Some((first, last));
        }
        plan.edges = [
            (from < first).then_some((from, first)),
            (last < to).then_some((last, to)),
        ];
        plan
    }
}

/// Seconds and sessions per project of the sessions that started in `range`, in a file at schema
/// `version`: the whole buckets from `activity_totals` (ended sessions) and the open sessions, the edges
/// from the sessions (see [`Plan`]). Runs in the caller's read transaction, so both parts read one snapshot.
pub(crate) fn totals_by_project(
    conn: &Connection,
    range: &TimeRange,
    version: u32,
) -> rusqlite::Result<Vec<ProjectTotal>> {
    let plan = Plan::of(range, version);
    let mut sums: std::collections::BTreeMap<Option<i64>, (i64, i64)> = std::collections::BTreeMap::new();
    let mut add = |project_id: Option<i64>, seconds: i64, sessions: i64| {
        let sum = sums.entry(project_id).or_default();
        sum.0 += seconds;
        sum.1 += sessions;
    };
    if let Some(whole) = plan.whole {
        whole_buckets(conn, whole, &mut add)?;
        add_each(
            conn,
            queries::OPEN_TOTALS_BY_PROJECT,
            whole,
            "activity_sessions",
            &mut add,
        )?;
    }
    for edge in plan.edges.into_iter().flatten() {
        add_each(conn, queries::TOTALS_BY_PROJECT, edge, "activity_sessions", &mut add)?;
    }
    Ok(sums
        .into_iter()
        .map(|(project_id, (seconds, sessions))| ProjectTotal {
            project_id,
            seconds,
            sessions,
        })
        .collect())
}

/// A bucket of the running totals (15 minutes) holding a bound of a range that is not on a quarter hour,
/// where retention pruned some of the sessions: a report counts, in that bucket's part of the range, only
/// the sessions still stored (whole buckets are counted from the totals, pruned sessions included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunedEdge {
    /// The bucket, `[from, from + 15 min)`.
    pub bucket: TimeRange,
    /// Ended sessions that started in the bucket, as the totals count them.
    pub counted: i64,
    /// Of those, the ones still stored: the rest were pruned.
    pub stored: i64,
}

/// The buckets at the edges of `range` where a report counts fewer sessions than were recorded (see
/// [`PrunedEdge`]); none for a file without totals (its reports count the sessions stored, as always).
pub(crate) fn pruned_edges(conn: &Connection, range: &TimeRange, version: u32) -> rusqlite::Result<Vec<PrunedEdge>> {
    if version < crate::schema::TOTALS_VERSION {
        return Ok(Vec::new());
    }
    let mut buckets: Vec<i64> = Plan::of(range, version)
        .edges
        .into_iter()
        .flatten()
        .map(|(from, _)| bucket_of(from))
        .collect();
    buckets.dedup();
    let mut found = Vec::new();
    for bucket in buckets {
        let end = bucket.saturating_add(queries::TOTALS_BUCKET_MS);
        let mut counted = 0;
        whole_buckets(conn, (bucket, end), &mut |_, _, sessions| counted += sessions)?;
        let stored: i64 = conn
            .prepare_cached(queries::ENDED_SESSIONS_STORED)?
            .query_row((bucket, end), |r| r.get(0))?;
        if stored < counted {
            found.push(PrunedEdge {
                bucket: TimeRange {
                    from: store_core::time::from_ms(bucket),
                    to: store_core::time::from_ms(end),
                },
                counted,
                stored,
            });
        }
    }
    Ok(found)
}

/// Per project with sessions in the whole buckets `[from, to)`, `add(project, seconds, sessions)`: one
/// statement, [`queries::TOTALS_FROM_BUCKETS`].
fn whole_buckets(
    conn: &Connection,
    (from, to): (i64, i64),
    add: &mut impl FnMut(Option<i64>, i64, i64),
) -> rusqlite::Result<()> {
    add_each(conn, queries::TOTALS_FROM_BUCKETS, (from, to), "activity_totals", add)
}

/// Runs `sql` over `(from, to)` and `add(project, seconds, sessions)` for each row it returns, read from
/// `table`.
fn add_each(
    conn: &Connection,
    sql: &str,
    (from, to): (i64, i64),
    table: &'static str,
    add: &mut impl FnMut(Option<i64>, i64, i64),
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query((from, to))?;
    while let Some(r) = rows.next()? {
        in_table(table, r, |r| {
            add(r.get(0)?, r.get(1)?, r.get(2)?);
            Ok(())
        })?;
    }
    Ok(())
}

/// The running totals (sessions, seconds) of a project before bucket boundary `at`: `(0, 0)` before its
/// first bucket, and for `at = i64::MIN` without a seek.
fn totals_before(stmt: &mut rusqlite::CachedStatement<'_>, key: (bool, i64), at: i64) -> rusqlite::Result<(i64, i64)> {
    if at == i64::MIN {
        return Ok((0, 0));
    }
    Ok(stmt
        .query_row((key.0, key.1, at), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((0, 0)))
}

/// One project's seconds and sessions in `range`, as [`totals_by_project`] computes them.
pub(crate) fn total_of_project(
    conn: &Connection,
    project_id: i64,
    range: &TimeRange,
    version: u32,
) -> rusqlite::Result<ProjectTotal> {
    let plan = Plan::of(range, version);
    let mut total = ProjectTotal {
        project_id: Some(project_id),
        seconds: 0,
        sessions: 0,
    };
    if let Some((from, to)) = plan.whole {
        let key = totals_key(Some(project_id));
        let mut before = conn.prepare_cached(queries::TOTALS_BEFORE)?;
        let hi = totals_before(&mut before, key, to)?;
        let lo = totals_before(&mut before, key, from)?;
        total.sessions += hi.0 - lo.0;
        total.seconds += hi.1 - lo.1;
        let mut open = conn.prepare_cached(queries::OPEN_TOTAL_OF_PROJECT)?;
        let (seconds, sessions): (i64, i64) = open.query_row((project_id, from, to), |r| Ok((r.get(0)?, r.get(1)?)))?;
        total.seconds += seconds;
        total.sessions += sessions;
    }
    for (from, to) in plan.edges.into_iter().flatten() {
        let mut stmt = conn.prepare_cached(queries::TOTAL_OF_PROJECT)?;
        let (seconds, sessions): (i64, i64) = stmt.query_row((project_id, from, to), |r| Ok((r.get(0)?, r.get(1)?)))?;
        total.seconds += seconds;
        total.sessions += sessions;
    }
    Ok(total)
}

pub(crate) fn latest(conn: &Connection) -> rusqlite::Result<Latest> {
    let session = conn
        .prepare_cached(queries::LATEST_SESSION)?
        .query_row([], session_from_row)
        .optional()?;
    let event = conn
        .prepare_cached(queries::LATEST_EVENT)?
        .query_row([], event_from_row)
        .optional()?;
    Ok(Latest { session, event })
}

pub(crate) fn last_ids(conn: &Connection) -> rusqlite::Result<LastIds> {
    conn.prepare_cached(queries::LAST_IDS)?.query_row([], |r| {
        Ok(LastIds {
            session_id: r.get(0)?,
            event_id: r.get(1)?,
        })
    })
}

/// Deletes up to `limit` events older than `before`; returns how many.
pub(crate) fn prune_events_chunk(conn: &Connection, before: DateTime<Utc>, limit: u32) -> rusqlite::Result<usize> {
    conn.prepare_cached(queries::PRUNE_EVENTS)?
        .execute((to_ms(before), i64::from(limit)))
}

/// Deletes up to `limit` ended sessions that started and ended before `before`; returns how many.
pub(crate) fn prune_sessions_chunk(conn: &Connection, before: DateTime<Utc>, limit: u32) -> rusqlite::Result<usize> {
    conn.prepare_cached(queries::PRUNE_SESSIONS)?
        .execute((to_ms(before), i64::from(limit)))
}

pub(crate) fn freelist_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(queries::FREELIST_COUNT, [], |r| r.get(0))
}

pub(crate) fn page_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(queries::PAGE_COUNT, [], |r| r.get(0))
}

/// One incremental-vacuum step of at most `pages` pages (its own autocommit transaction).
pub(crate) fn incremental_vacuum_step(conn: &Connection, pages: u32) -> rusqlite::Result<()> {
    // The pragma frees one page per step of its statement, so it is stepped until it is done: `execute_batch`
    // steps each statement once, and returned one page per call.
    let mut stmt = conn.prepare(&queries::incremental_vacuum(pages))?;
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}

fn session_from_row(r: &Row<'_>) -> rusqlite::Result<Session> {
    in_table("activity_sessions", r, |r| {
        Ok(Session {
            id: r.get(0)?,
            app: r.get(1)?,
            title: r.get(2)?,
            url: r.get(3)?,
            domain: r.get(4)?,
            project_id: r.get(5)?,
            start: get_time(r, 6)?,
            end: get_opt_time(r, 7)?,
            duration_seconds: r.get(8)?,
            is_idle: r.get(9)?,
            end_reason: r.get::<_, Option<String>>(10)?.as_deref().and_then(EndReason::parse),
        })
    })
}

fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    in_table("activity_events", r, |r| {
        Ok(Event {
            id: r.get(0)?,
            session_id: r.get(1)?,
            event_type: r.get(2)?,
            app: r.get(3)?,
            title: r.get(4)?,
            url: r.get(5)?,
            at: get_time(r, 6)?,
            idle_seconds: r.get(7)?,
        })
    })
}
