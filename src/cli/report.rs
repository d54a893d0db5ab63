//! `splitstore report`: time per project, joining activity.db (sessions aggregated in SQL there) and
//! config.db (names) in the application. Read-only: runs while the daemon and the server write.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use activity_store::TimeRange;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use splitstore::{ProjectStatus, Reports};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// Sessions starting at or after this time: RFC 3339 (2024-01-01T10:00:00Z), a date (2024-01-01, UTC
    /// midnight) or epoch milliseconds (12 digits or more: fewer are refused, most likely epoch seconds).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Sessions starting before this time (same forms as --from; a --to not after --from is refused).
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Print a JSON array of {"project_id", "name", "status", "seconds", "sessions"}; status is one of
    /// active, archived, deleted, left_out_by_restore (a restore of config.db from an older backup left the
    /// project out), lost_to_damage (on a page of config.db a salvage could not read), named_by_old_id (the
    /// project's id before a repair gave it a smaller one; "name" is the project's: run repair),
    /// named_by_new_id (the id a repair gave the project, which a config.db put back from before that repair
    /// does not have yet; "name" is the project's: run repair), unassigned.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

/// One row of `--json`: exactly the documented keys.
#[derive(Serialize)]
struct Row<'a> {
    project_id: Option<i64>,
    name: Option<&'a str>,
    /// What the id refers to now (`active`, `archived`, `deleted`, `left_out_by_restore`, `lost_to_damage`,
    /// `named_by_old_id`, `named_by_new_id`, `unassigned`).
    status: ProjectStatus,
    seconds: i64,
    sessions: i64,
}

pub fn run(args: Args) -> ExitCode {
    let (key, range) = match super::start(&args.data_dir, &args.key).and_then(|key| Ok((key, range(&args)?))) {
        Ok(started) => started,
        Err(e) => return super::fail_json("report", &e, args.json),
    };
    let reports = Reports::open_with_key(&args.data_dir, key);
    let rows = match reports.time_per_project(&range) {
        Ok(rows) => rows,
        Err(e) => return super::fail_json("report", &e, args.json),
    };
    // A bound inside a quarter hour retention pruned in part: the answer counts less than was recorded
    // there, said rather than left to look like history that changed by itself.
    for edge in reports.activity().pruned_at_edges(&range).unwrap_or_default() {
        let at = |t: Option<DateTime<Utc>>| {
            t.map_or_else(String::new, |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        let _ = writeln!(
            std::io::stderr(),
            "splitstore report: note: a bound of the range lies in {} .. {}, a quarter hour whose sessions \
             retention pruned in part: {} of the {} sessions that started in it are still stored, and only those \
             are counted in the range's part of it; bounds on quarter hours are counted exactly, pruned sessions \
             included",
            at(edge.bucket.from),
            at(edge.bucket.to),
            edge.stored,
            edge.counted
        );
    }
    // Time named by a project's old id reads as a deleted project's without it: said, with what moves it.
    if rows.iter().any(|r| r.status == ProjectStatus::NamedByOldId) {
        let _ = writeln!(
            std::io::stderr(),
            "splitstore report: note: the time marked `(old id)` (status `named_by_old_id`) names its project by \
             the id it had before a repair gave config.db's projects smaller ids (activity.db was put back from \
             before that repair): stop the daemon and the server, then run `{}` to move it to the new ids",
            activity_store::SCHEMA.command("repair", &args.data_dir, "")
        );
    }
    if rows.iter().any(|r| r.status == ProjectStatus::NamedByNewId) {
        let _ = writeln!(
            std::io::stderr(),
            "splitstore report: note: the time marked `(new id)` (status `named_by_new_id`) names its project by \
             the id a repair gave it, which config.db does not have yet (the repair stopped before it changed \
             config.db, or config.db was put back from before it): stop the daemon and the server, then run `{}` \
             to give config.db's projects the ids activity.db names",
            config_store::SCHEMA.command("repair", &args.data_dir, "")
        );
    }
    if args.json {
        let json: Vec<Row> = rows
            .iter()
            .map(|r| Row {
                project_id: r.project_id,
                name: r.name.as_deref(),
                status: r.status,
                seconds: r.seconds,
                sessions: r.sessions,
            })
            .collect();
        match serde_json::to_string(&json) {
            Ok(text) => super::say!("{text}"),
            Err(e) => return super::fail("report", &e),
        }
        return ExitCode::SUCCESS;
    }
    super::say!("{:>10}  {:<32} {:>10} {:>10}", "project", "name", "sessions", "hours");
    for r in &rows {
        let id = r.project_id.map_or_else(|| "-".to_string(), |id| id.to_string());
        let name = match (r.status, &r.name) {
            (ProjectStatus::Unassigned, _) => "(no project)".to_string(),
            (ProjectStatus::Deleted, _) => "(deleted project)".to_string(),
            (ProjectStatus::LeftOutByRestore, _) => "(left out by a config restore)".to_string(),
            (ProjectStatus::LostToDamage, _) => "(lost with config.db damage)".to_string(),
            (ProjectStatus::NamedByOldId, Some(n)) => format!("{n} (old id)"),
            (ProjectStatus::NamedByOldId, None) => "(deleted project, old id)".to_string(),
            (ProjectStatus::NamedByNewId, Some(n)) => format!("{n} (new id)"),
            (ProjectStatus::Archived, Some(n)) => format!("{n} (archived)"),
            (_, name) => name.clone().unwrap_or_default(),
        };
        super::say!(
            "{id:>10}  {:<32} {:>10} {:>10.2}",
            truncate(&one_line(&name), 32),
            r.sessions,
            r.seconds as f64 / 3600.0
        );
    }
    ExitCode::SUCCESS
}

/// The range asked for. An empty one is a question the user did not mean to ask (the two times swapped,
/// say): an empty table would read as "no activity". Refused as `invalid_input` (an input value is unusable),
/// said of the data directory the report is of.
fn range(args: &Args) -> Result<TimeRange, super::NotStarted> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        return Err(super::NotStarted::InvalidInput {
            path: args.data_dir.clone(),
            what: format!(
                "--from {} is not before --to {}: no session can start in that range",
                at(from),
                at(to)
            ),
            remedy: "give the earlier time as --from",
        });
    }
    Ok(TimeRange {
        from: args.from,
        to: args.to,
    })
}

/// A name as one line of the table: a newline or carriage return in it (a legacy name may hold one) would
/// put the row's numbers on a line that reads as another project's, or overwrite it in a terminal. Control
/// characters are shown escaped, as `--json` does.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// RFC 3339, a plain date (UTC midnight), or epoch milliseconds.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or("not a valid date")?);
    }
    if let Ok(ms) = s.parse::<i64>() {
        let time =
            DateTime::from_timestamp_millis(ms).ok_or_else(|| format!("{ms} ms is outside the range of times"))?;
        // Epoch milliseconds of any time since March 1973 have 12 digits or more: fewer are most likely epoch
        // seconds (`date +%s`) or a compact date (20260101), which would silently ask about 1970.
        if ms.unsigned_abs() < 100_000_000_000 {
            return Err(format!(
                "{s} read as epoch milliseconds is {}, most likely not the time meant: for epoch seconds write \
                 {s}000, for a date write it as 2026-01-01, for all of history leave the bound out",
                time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
        return Ok(time);
    }
    Err(format!(
        "{s:?} is not a time: use RFC 3339 (2024-01-01T10:00:00Z), a date (2024-01-01) or epoch milliseconds"
    ))
}
