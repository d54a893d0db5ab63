//! The server's composition: [`Server`] owns config.db ([`ConfigStore`]) and reads activity.db; [`Reports`]
//! answers the questions that used to be SQL JOINs across one combined file by joining in the application.
//! `Reports` holds only read-only handles, so `splitstore report` (or the daemon) can ask the same questions
//! while the server runs. Each side is aggregated inside its own file first (activity totals per
//! project from activity.db's running totals; names in one query of config.db), so the join touches
//! hundreds of rows, not millions.
//!
//! Nothing is dropped by a join: sessions with no project and sessions naming a project that was deleted
//! are reported as [`ProjectStatus::Unassigned`] and [`ProjectStatus::Deleted`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use activity_store::{ActivityReader, ProjectTotal, Session, SessionSpan, TimeRange};
use config_store::{CalendarEvent, ConfigReader, ConfigStore, OpenOptions, Project};
use serde::Serialize;
use store_core::provenance::MissingBecause;

use crate::Result;

/// An activity read that the daemon has not recorded anything for yet (activity.db not created, or created
/// but not yet given its schema) answers "nothing": a fresh install where the server starts first shows an
/// empty report, not an error. Anything else, a data directory not converted yet included, is an error.
fn or_nothing_yet<T: Default>(read: activity_store::Result<T>) -> Result<T> {
    match read {
        Err(store_core::Error::Missing { .. } | store_core::Error::SchemaBehind { found: 0, .. }) => Ok(T::default()),
        other => Ok(other?),
    }
}

/// What a project id in activity or calendar data refers to now. More reasons a project is not under its id
/// may come (four came as restores, salvages and repairs were met): match with a fallback arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProjectStatus {
    /// The row names no project.
    Unassigned,
    Active,
    Archived,
    /// The row names a project id that config.db no longer has.
    Deleted,
    /// The row names a project id that config.db does not have because a restore of config.db from an older
    /// backup left it out: the file it replaced had created it after the backup was taken and still held it,
    /// so it went with that file (kept aside until `cleanup`), not deleted by the user.
    LeftOutByRestore,
    /// The row names a project id that config.db does not have because it was on a damaged page that a
    /// salvage of config.db could not read (or deleted before the damage: nothing tells the two apart).
    LostToDamage,
    /// The row names a project by the id it had before a repair gave config.db's projects smaller ids (they
    /// had run out): its file was put back from before that repair without the move (copied by hand, or
    /// restored by an earlier build). `name` is the project's under its new id (`None`: deleted since);
    /// `splitstore repair` moves the rows to the new id. Reported as deleted, it read as time lost.
    NamedByOldId,
    /// The other way round: the row names a project by the id a repair gave it, and config.db still has the
    /// project under its old id (the repair stopped before it changed config.db, or config.db was put back
    /// from before it by hand). `name` is the project's under its old id, as activity.db records the move;
    /// `splitstore repair` gives config.db's projects the new ids.
    NamedByNewId,
}

/// Time on one project in a range: one row per distinct `activity_sessions.project_id`, NULL included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectTime {
    pub project_id: Option<i64>,
    /// The project's name from config.db; `None` when unassigned or deleted. Named by an old id
    /// ([`ProjectStatus::NamedByOldId`]): the name under its new id; by a new id config.db does not have yet
    /// ([`ProjectStatus::NamedByNewId`]): the name under its old one.
    pub name: Option<String>,
    pub status: ProjectStatus,
    /// Sum of `duration_seconds` (NULL counts 0).
    pub seconds: i64,
    pub sessions: i64,
}

/// One project's activity in a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectActivity {
    /// The project the id names: config.db's under that id, or under the id a repair moved it to or from
    /// ([`ProjectStatus::NamedByOldId`], [`ProjectStatus::NamedByNewId`]). `None` if config.db has no such
    /// project (deleted, say): its sessions are still reported.
    pub project: Option<Project>,
    /// What the id refers to now, as [`Reports::time_per_project`] says it.
    pub status: ProjectStatus,
    /// All of the project's time in the range, from activity.db's running totals: pruned sessions still
    /// count here, though `sessions` no longer lists them.
    pub seconds: i64,
    pub sessions: Vec<Session>,
}

/// A calendar event beside the activity tracked during it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarActivity {
    pub event: CalendarEvent,
    pub project_name: Option<String>,
    pub project_status: ProjectStatus,
    /// Milliseconds of ended sessions (any project) overlapping the event's time.
    pub tracked_ms: i64,
    /// Of those, milliseconds of sessions of the event's own project.
    pub project_ms: i64,
}

/// The server side: the owner of config.db, and the reports over both files.
///
/// ```
/// use splitstore::{ProjectStatus, Server, TimeRange};
/// use splitstore::activity_store::{ActivityWriter, NewSession};
/// use splitstore::config_store::NewProject;
///
/// let dir = tempfile::tempdir()?;
/// let mut server = Server::open(dir.path())?; // owns config.db; activity.db may not exist yet
/// assert!(server.reports().time_per_project(&TimeRange::all())?.is_empty(), "nothing recorded yet");
///
/// let acme = server.config_mut().create_project(&NewProject::named("Acme"))?;
/// // The daemon (another process in real life) records a session of that project.
/// let mut daemon = ActivityWriter::open_in(dir.path())?;
/// let start = chrono::Utc::now() - chrono::Duration::hours(1);
/// let s = daemon.start_session(&NewSession { project_id: Some(acme.id), ..NewSession::new("editor", start) })?;
/// daemon.end_session(s, start + chrono::Duration::minutes(30))?;
///
/// let rows = server.reports().time_per_project(&TimeRange::all())?;
/// assert_eq!((rows[0].name.as_deref(), rows[0].seconds, rows[0].status), (Some("Acme"), 1800, ProjectStatus::Active));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Server {
    config: ConfigStore,
    reports: Reports,
    counters_raised: Vec<(String, i64)>,
}

impl Server {
    /// Opens `data_dir/config.db` as its owner (creating and migrating it as needed) and a reader of
    /// `data_dir/activity.db` (which the daemon may not have created yet: reports then show nothing).
    pub fn open(data_dir: &Path) -> Result<Server> {
        Self::open_with(data_dir, &OpenOptions::default())
    }

    /// [`open`](Self::open) with options for config.db's owner (busy timeout, backup directory, where the
    /// legacy database lives...). With `options.key` (an encrypted data directory), activity.db is read with
    /// the same key: both databases of a data directory share one key.
    ///
    /// Sessions in activity.db name projects by id, and so do the totals they leave behind when retention
    /// prunes them. A config.db older than activity.db (a copy of it put back by hand, or its last commits
    /// rolled back by a power loss, which `synchronous=NORMAL` allows, while activity.db kept a session
    /// naming a project created in them) would hand those ids out again, and reports would join the old
    /// sessions to the new project: its counters are first raised past every id activity.db refers to
    /// ([`counters_raised`](Self::counters_raised)).
    pub fn open_with(data_dir: &Path, options: &OpenOptions) -> Result<Server> {
        let mut config = ConfigStore::open_with(&config_store::SCHEMA.path_in(data_dir), options)?;
        let referenced = crate::operations::referenced_ids(data_dir, &config_store::SCHEMA, options.key.as_ref());
        let counters_raised = config.raise_counters(&referenced)?;
        let reports = Reports {
            config: config.reader().clone(),
            activity: ActivityReader::open_with_key(&activity_store::SCHEMA.path_in(data_dir), options.key.clone()),
        };
        Ok(Server {
            config,
            reports,
            counters_raised,
        })
    }

    /// The counters of config.db this open found behind ids activity.db refers to, and raised: (table, the
    /// highest such id). Empty when config.db was not older than activity.db.
    pub fn counters_raised(&self) -> &[(String, i64)] {
        &self.counters_raised
    }

    pub fn config(&self) -> &ConfigStore {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut ConfigStore {
        &mut self.config
    }

    pub fn reports(&self) -> &Reports {
        &self.reports
    }
}

/// The questions that join activity.db and config.db, answered in the application through read-only
/// handles on both files.
#[derive(Debug, Clone)]
pub struct Reports {
    config: ConfigReader,
    activity: ActivityReader,
}

impl Reports {
    /// Read-only handles on both files of `data_dir`. Touches nothing now: each question reports a missing
    /// or unreadable file as its typed error.
    pub fn open(data_dir: &Path) -> Reports {
        Self::open_with_key(data_dir, None)
    }

    /// [`open`](Self::open) for an encrypted data directory: both files are read with `key`.
    pub fn open_with_key(data_dir: &Path, key: Option<store_core::Key>) -> Reports {
        Reports {
            config: ConfigReader::open_with_key(&config_store::SCHEMA.path_in(data_dir), key.clone()),
            activity: ActivityReader::open_with_key(&activity_store::SCHEMA.path_in(data_dir), key),
        }
    }

    pub fn activity(&self) -> &ActivityReader {
        &self.activity
    }

    pub fn config(&self) -> &ConfigReader {
        &self.config
    }

    /// Time per project in `range` (sessions by start time), with project names. Every distinct project id
    /// of the sessions appears once, the unassigned (NULL) and deleted ones included; largest first. Empty
    /// while the daemon has recorded nothing yet. The totals come from activity.db's running totals (see
    /// [`ActivityReader::totals_by_project`]): a few milliseconds at any history length, and pruned
    /// sessions still count.
    pub fn time_per_project(&self, range: &TimeRange) -> Result<Vec<ProjectTime>> {
        let totals = or_nothing_yet(self.activity.totals_by_project(range))?;
        let projects = self.project_index()?;
        let mut rows: Vec<ProjectTime> = totals
            .into_iter()
            .map(
                |ProjectTotal {
                     project_id,
                     seconds,
                     sessions,
                 }| {
                    let (name, status) = describe(&projects, project_id);
                    ProjectTime {
                        project_id,
                        name,
                        status,
                        seconds,
                        sessions,
                    }
                },
            )
            .collect();
        rows.sort_by(|a, b| b.seconds.cmp(&a.seconds).then(a.project_id.cmp(&b.project_id)));
        Ok(rows)
    }

    /// One project's sessions in `range` (at most `limit`, oldest first) and its total seconds. Works for a
    /// deleted project too: its sessions keep its id.
    pub fn project_activity(&self, project_id: i64, range: &TimeRange, limit: u32) -> Result<ProjectActivity> {
        let (under, status) = resolve(&self.project_index()?, Some(project_id));
        let project = match under {
            Some(id) => self.config.project(id)?,
            None => None,
        };
        let sessions = or_nothing_yet(self.activity.sessions_of_project(project_id, range, limit))?;
        let seconds = or_nothing_yet(self.activity.total_of_project(project_id, range).map(|t| t.seconds))?;
        Ok(ProjectActivity {
            project,
            status,
            seconds,
            sessions,
        })
    }

    /// Calendar events overlapping `range` (as [`ConfigReader::calendar_events_between`] selects them),
    /// each beside the time tracked while it ran. Events with no end (or an end before their start) have no
    /// duration, so nothing overlaps them; they are listed with 0. The ended sessions sharing time with any
    /// event are read once (their project, start and end only) and each event's overlap is two binary
    /// searches over their sorted starts and ends: a year of 2 000 events over a year of 10^6 sessions in
    /// about half a second, where summing every event against every session took 24 s (`cargo bench
    /// --bench report`).
    pub fn calendar_beside_activity(&self, range: &TimeRange) -> Result<Vec<CalendarActivity>> {
        let events = self.config.calendar_events_between(range)?;
        let window = events.iter().filter_map(|e| {
            e.end_time
                .filter(|end| *end > e.start_time)
                .map(|end| (e.start_time, end))
        });
        let spans = match window.reduce(|(a, b), (c, d)| (a.min(c), b.max(d))) {
            Some((first, last)) => or_nothing_yet(
                self.activity
                    .session_spans_overlapping(&TimeRange::between(first, last)),
            )?,
            None => Vec::new(),
        };
        let tracked = Coverage::of(spans.iter());
        let named: HashSet<i64> = events.iter().filter_map(|e| e.project_id).collect();
        let mut of_project: HashMap<i64, Vec<&SessionSpan>> = HashMap::new();
        for s in &spans {
            if let Some(id) = s.project_id.filter(|id| named.contains(id)) {
                of_project.entry(id).or_default().push(s);
            }
        }
        let of_project: HashMap<i64, Coverage> = of_project
            .into_iter()
            .map(|(id, spans)| (id, Coverage::of(spans.into_iter())))
            .collect();
        let projects = self.project_index()?;
        Ok(events
            .into_iter()
            .map(|event| {
                let (project_name, project_status) = describe(&projects, event.project_id);
                let (mut tracked_ms, mut project_ms) = (0, 0);
                if let Some(end) = event.end_time {
                    let (from, to) = (event.start_time.timestamp_millis(), end.timestamp_millis());
                    tracked_ms = tracked.within(from, to);
                    if let Some(own) = event.project_id.and_then(|id| of_project.get(&id)) {
                        project_ms = own.within(from, to);
                    }
                }
                CalendarActivity {
                    event,
                    project_name,
                    project_status,
                    tracked_ms,
                    project_ms,
                }
            })
            .collect())
    }

    /// Every project of config.db (archived included) by id, and the ids it may lack for another reason than
    /// a deletion: three queries.
    fn project_index(&self) -> Result<ProjectIndex> {
        Ok(ProjectIndex {
            old_ids: or_nothing_yet(self.activity.project_ids_moved())?
                .into_iter()
                .map(|(old, new)| (new, old))
                .collect(),
            names: self
                .config
                .project_summaries()?
                .into_iter()
                .map(|p| (p.id, (p.name, p.archived)))
                .collect(),
            missing: self.config.project_ids_missing()?,
        })
    }
}

/// What a report needs to name the project ids activity.db holds.
struct ProjectIndex {
    /// Name and whether archived, by id.
    names: HashMap<i64, (String, bool)>,
    missing: store_core::provenance::MissingIds,
    /// The id a project had before a repair moved it, by its new id, as activity.db records the moves: a
    /// config.db put back from before that repair has the project under the old one.
    old_ids: HashMap<i64, i64>,
}

fn describe(projects: &ProjectIndex, id: Option<i64>) -> (Option<String>, ProjectStatus) {
    let (under, status) = resolve(projects, id);
    let name = under
        .and_then(|id| projects.names.get(&id))
        .map(|(name, _)| name.clone());
    (name, status)
}

/// What `id` refers to now, and the id config.db has that project under: its own, or the one a repair moved
/// it to (the row's file put back from before the repair) or from (config.db put back from before it).
fn resolve(projects: &ProjectIndex, id: Option<i64>) -> (Option<i64>, ProjectStatus) {
    let Some(id) = id else {
        return (None, ProjectStatus::Unassigned);
    };
    if let Some((_, archived)) = projects.names.get(&id) {
        let status = if *archived {
            ProjectStatus::Archived
        } else {
            ProjectStatus::Active
        };
        return (Some(id), status);
    }
    let held = |id: i64| projects.names.contains_key(&id).then_some(id);
    match projects.missing.why(id) {
        Some(MissingBecause::MovedByRepair { now }) => (held(now), ProjectStatus::NamedByOldId),
        Some(MissingBecause::LeftOutByRestore) => (None, ProjectStatus::LeftOutByRestore),
        Some(MissingBecause::LostToDamage) => (None, ProjectStatus::LostToDamage),
        None => match projects.old_ids.get(&id).and_then(|&old| held(old)) {
            Some(old) => (Some(old), ProjectStatus::NamedByNewId),
            None => (None, ProjectStatus::Deleted),
        },
    }
}

/// The time a set of ended sessions covers in any interval, summed over the sessions (two that overlap
/// each other both count), answered in O(log n): their starts and their ends sorted apart, each with running
/// sums. A session `[s, e)` holds `min(t, e) - s` of the time before `t` when `s < t`, that is `t - s` less
/// `t - e` once `e < t` too; so the time before `t` is `k*t - (sum of the k starts before t)` less the same
/// over the ends before `t`, and an interval's time the difference of its two ends' (as every event
/// against every session summed `max(0, min(end, e) - max(start, s))`, at a cost of events x sessions).
/// Sessions ending at or before their start (a clock set back while one ran) cover nothing, as there.
struct Coverage {
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// `start_sums[k]` is the sum of `starts[..k]`; i128, as 5.4 million of today's epoch milliseconds
    /// overflow i64.
    start_sums: Vec<i128>,
    end_sums: Vec<i128>,
}

impl Coverage {
    fn of<'a>(spans: impl Iterator<Item = &'a SessionSpan>) -> Coverage {
        let (mut starts, mut ends): (Vec<i64>, Vec<i64>) = spans
            .map(|s| (s.start.timestamp_millis(), s.end.timestamp_millis()))
            .filter(|(start, end)| end > start)
            .unzip();
        starts.sort_unstable();
        ends.sort_unstable();
        let sums = |v: &[i64]| -> Vec<i128> {
            std::iter::once(0)
                .chain(v.iter().scan(0i128, |sum, &t| {
                    *sum += i128::from(t);
                    Some(*sum)
                }))
                .collect()
        };
        Coverage {
            start_sums: sums(&starts),
            end_sums: sums(&ends),
            starts,
            ends,
        }
    }

    /// The time covered before `t`.
    fn before(&self, t: i64) -> i128 {
        let started = self.starts.partition_point(|&s| s < t);
        let ended = self.ends.partition_point(|&e| e < t);
        let t = i128::from(t);
        (started as i128 * t - self.start_sums[started]) - (ended as i128 * t - self.end_sums[ended])
    }

    /// Milliseconds covered in `[from, to)`: none when it is empty.
    fn within(&self, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        // At most the interval's length times the sessions: within i64 for any interval of real times.
        (self.before(to) - self.before(from)) as i64
    }
}
