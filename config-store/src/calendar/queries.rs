//! SQL for calendar subscriptions and their events, and nothing else.
//!
//! Public so that benches run exactly these texts against raw rusqlite; applications use
//! [`ConfigStore`](crate::ConfigStore) and [`ConfigReader`](crate::ConfigReader).

pub const INSERT_SUBSCRIPTION: &str =
    "INSERT INTO calendar_subscriptions (name, url, color, enabled) VALUES (?1, ?2, ?3, ?4)";

pub const SELECT_SUBSCRIPTION: &str =
    "SELECT id, name, url, color, last_synced_at_ms, enabled FROM calendar_subscriptions WHERE id = ?1";

pub const SELECT_SUBSCRIPTIONS: &str =
    "SELECT id, name, url, color, last_synced_at_ms, enabled FROM calendar_subscriptions ORDER BY id";

/// `?4` says whether to set the color at all, so that `NULL` in `?5` can clear it.
pub const UPDATE_SUBSCRIPTION: &str = "UPDATE calendar_subscriptions
    SET name = coalesce(?2, name),
        url = coalesce(?3, url),
        color = CASE WHEN ?4 THEN ?5 ELSE color END,
        enabled = coalesce(?6, enabled)
    WHERE id = ?1";

/// Its events go with it (ON DELETE CASCADE).
pub const DELETE_SUBSCRIPTION: &str = "DELETE FROM calendar_subscriptions WHERE id = ?1";

pub const SET_LAST_SYNCED: &str = "UPDATE calendar_subscriptions SET last_synced_at_ms = ?2 WHERE id = ?1";

pub const DELETE_EVENTS_OF: &str = "DELETE FROM calendar_events WHERE subscription_id = ?1";

pub const INSERT_EVENT: &str = "INSERT INTO calendar_events
    (subscription_id, uid, title, start_time_ms, end_time_ms, project_id)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// Events of `$project` (`""`, or a condition that names `?3`) that overlap `[?1, ?2)` among those
/// `$since` selects (`""`: all): none if `?1 >= ?2`. An event spans `[start, end)`; one without an end, or
/// whose end is not after its start, is the instant `start` (as `[start, start + 1 ms)`). Index:
/// `calendar_events_start` (`calendar_events_project` for a project), bounded above by `?2` and below by
/// `$since` alone.
macro_rules! events_starting {
    ($project:expr, $since:expr) => {
        concat!(
            "SELECT id, subscription_id, uid, title, start_time_ms, end_time_ms, project_id
FROM calendar_events
WHERE ?1 < ?2",
            $project,
            $since,
            " AND start_time_ms < ?2
  AND max(coalesce(end_time_ms, start_time_ms), start_time_ms + 1) > ?1"
        )
    };
}

/// Events of `$project` (`$project_of_long` in the second part) that overlap `[?1, ?2)`, on a file of
/// schema 3 or later, in no order (the caller sorts). Two parts, as activity.db's sessions are read: the
/// events that start at most a day before the range (both bounds of the start index) and the longer ones (the partial index `calendar_events_long`
/// of migration 3, which holds only events longer than a day; the second part's WHERE names its condition,
/// which is what lets the planner use it: <https://sqlite.org/partialindex.html#queries_using_partial_indexes>;
/// the unary `+` keeps it off the start index:
/// <https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_>). An event of a day
/// or less that starts earlier ends before the range; the two parts share no event (the first starts at or
/// after `?1` less a day, the second before). No ORDER BY: on a union it would draw the second part to a
/// scan of the whole start index, in its order (seen in the plan test). A range far back reads its own
/// days' events, not every event since the first one (what a file of schema 2 is read by).
/// `?1 - 86400000` of the smallest integer is a REAL, still below every start
/// (<https://sqlite.org/lang_expr.html>, "integer overflow").
macro_rules! events_overlapping {
    ($project:expr, $project_of_long:expr) => {
        concat!(
            events_starting!($project, " AND start_time_ms >= ?1 - 86400000"),
            "
UNION ALL
SELECT id, subscription_id, uid, title, start_time_ms, end_time_ms, project_id
FROM calendar_events
WHERE ?1 < ?2",
            $project_of_long,
            " AND end_time_ms - start_time_ms > 86400000 AND end_time_ms > ?1 AND +start_time_ms < ?1 - 86400000"
        )
    };
}

/// Events that overlap `[?1, ?2)` (see `events_overlapping!`).
pub const EVENTS_OVERLAPPING: &str = events_overlapping!("", "");

/// As [`EVENTS_OVERLAPPING`], only the events of project `?3` (the unary `+` in the second part keeps it
/// off `calendar_events_project`, where it would visit every event of the project).
pub const PROJECT_EVENTS_OVERLAPPING: &str = events_overlapping!(" AND project_id = ?3", " AND +project_id = ?3");

/// [`EVENTS_OVERLAPPING`] on a file of schema 2 (a server of an older build keeps it; this build's readers
/// read it): without the index of long events, every event that starts before `?2` is visited.
pub const EVENTS_OVERLAPPING_SCHEMA_2: &str = events_starting!("", "");

/// [`PROJECT_EVENTS_OVERLAPPING`] on a file of schema 2.
pub const PROJECT_EVENTS_OVERLAPPING_SCHEMA_2: &str = events_starting!(" AND project_id = ?3", "");
