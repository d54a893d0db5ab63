//! `splitstore doctor`: the state of both databases at a glance, each problem with the command that fixes it.
//! Exit 0 healthy, 1 problems found, 2 could not run. Never prints a settings value (only row counts).

use std::path::PathBuf;
use std::process::ExitCode;

use splitstore::health::{self, Health};
use store_core::LockState;
use store_core::diagnostics::{CheckLevel, DbHealth};
use store_core::leftovers::Leftover;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Run integrity_check (O(N log N)) instead of quick_check.
    #[arg(long, conflicts_with = "no_check")]
    pub full: bool,
    /// Skip the structural check (header, version, owner and counts only).
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: Args) -> ExitCode {
    // Doctor could not run: exit 2, as every command (1 is for problems found).
    let key = match super::start(&args.data_dir, &args.key) {
        Ok(key) => key,
        Err(e) => return super::fail_json("doctor", &e, args.json),
    };
    let level = match (args.full, args.no_check) {
        (true, _) => CheckLevel::Full,
        (_, true) => CheckLevel::None,
        _ => CheckLevel::Quick,
    };
    let health = health::check_with_key(&args.data_dir, level, key.as_ref());
    if args.json {
        match serde_json::to_string_pretty(&health) {
            Ok(json) => super::say!("{json}"),
            Err(e) => return super::fail("doctor", &e),
        }
    } else {
        super::print_out(format_args!("{}", render(&health)));
    }
    if health.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One line of the table: how to show a fact of one database.
type Cell = fn(&DbHealth) -> String;

fn render(h: &Health) -> String {
    let rows: [(&str, Cell); 13] = [
        ("file", |d| {
            if d.exists {
                format!(
                    "{} ({}, wal {})",
                    d.database,
                    super::human_bytes(d.size_bytes.unwrap_or(0)),
                    super::human_bytes(d.wal_bytes)
                )
            } else {
                format!("{} (missing)", d.database)
            }
        }),
        ("schema", |d| match d.schema_version {
            Some(v) if d.newer_than_build => format!("{v} (NEWER than this build's {})", d.build_version),
            Some(v) if d.pending_migrations > 0 => {
                format!("{v} ({} pending, build {})", d.pending_migrations, d.build_version)
            }
            Some(v) => format!("{v} (build {})", d.build_version),
            None => "-".into(),
        }),
        ("application_id", |d| {
            d.application_id
                .map(|id| format!("{id:#010x}"))
                .unwrap_or_else(|| "-".into())
        }),
        ("check", |d| match &d.check {
            Some(c) => format!(
                "{} {}{}",
                match c.level {
                    CheckLevel::Full => "integrity_check",
                    CheckLevel::Quick => "quick_check",
                    CheckLevel::None => "none",
                },
                if c.ok { "ok" } else { "FAILED" },
                if c.on_snapshot { " (on a snapshot)" } else { "" }
            ),
            None => "-".into(),
        }),
        ("foreign keys", |d| match d.foreign_key_violations {
            Some(0) => "ok".into(),
            Some(n) => format!("{n} violation(s)"),
            None => "-".into(),
        }),
        ("owner", |d| match &d.owner {
            Some(LockState::Free) => "free".into(),
            Some(LockState::Held { holder: Some(holder) }) => format!("held by {holder}"),
            Some(LockState::Held { holder: None }) => "held (pid not yet written)".into(),
            None => "-".into(),
        }),
        ("rows", |d| {
            let counts: Vec<String> = d
                .row_counts
                .iter()
                .filter(|(t, _)| !matches!(t.as_str(), "schema_migrations" | "reader_compatibility" | "provenance"))
                .map(|(t, n)| format!("{t}={n}"))
                .collect();
            if counts.is_empty() {
                "-".into()
            } else {
                counts.join(" ")
            }
        }),
        ("last recovery", |d| match &d.last_recovery {
            Some(r) => format!(
                "{} {}",
                store_core::time::show_ms(r.at_ms),
                r.detail.as_deref().unwrap_or("")
            ),
            None => "none".into(),
        }),
        ("newest backup", |d| match &d.newest_backup {
            Some(b) => format!("{} ({})", b.path.display(), b.taken_at.to_rfc3339()),
            None => "none".into(),
        }),
        ("pre-migration", |d| match d.pre_migration_backups.as_slice() {
            [] => "none".into(),
            all => format!(
                "{} backup(s) taken before migrations (never rotated), newest {}",
                all.len(),
                all[0].path.display()
            ),
        }),
        // Only when there are some: another data directory backing up into the same folder.
        ("others' backups", |d| match d.other_files_backups.as_slice() {
            [] => String::new(),
            all => format!(
                "{} backup(s) of other {} files beside them (not rotated with this one's); newest {}{}",
                all.len(),
                d.database,
                all[0].path.display(),
                all[0]
                    .taken_from
                    .as_deref()
                    .map(|f| format!(", taken from {f}"))
                    .unwrap_or_default()
            ),
        }),
        ("last failure", |d| match &d.last_failure {
            Some(f) => f.to_string(),
            None => "none".into(),
        }),
        // Only when there is some: a healthy table stays short.
        ("damage seen", |d| match &d.damage_seen {
            Some(f) => format!("{f} (met while running; kept until a restore or repair)"),
            None => String::new(),
        }),
    ];
    let mut out = format!("splitstore doctor: {}\n", h.data_dir.display());
    for db in &h.databases {
        out.push_str(&format!("\n{}\n", db.path.display()));
        for (label, cell) in &rows {
            let cell = cell(db);
            if !cell.is_empty() {
                out.push_str(&format!("  {label:<15} {cell}\n"));
            }
        }
    }
    let leftovers: Vec<&Leftover> = h
        .databases
        .iter()
        .flat_map(|d| &d.leftovers)
        .chain(&h.leftovers)
        .collect();
    if !leftovers.is_empty() {
        let now = chrono::Utc::now();
        let total: u64 = leftovers.iter().map(|l| l.size_bytes).sum();
        out.push_str(&format!(
            "\n{} file(s) holding user data outside the databases ({}):\n",
            leftovers.len(),
            super::human_bytes(total)
        ));
        for l in &leftovers {
            out.push_str(&format!(
                "  {} ({}, {} days old): {}\n",
                l.path.display(),
                super::human_bytes(l.size_bytes),
                l.age_days(now),
                l.what
            ));
        }
        out.push_str(&format!(
            "  remove them when no longer needed: `splitstore cleanup --data-dir {} --older-than DAYS` (add \
             --dry-run to see what it would remove)\n",
            store_core::files::shell_quoted(&h.data_dir)
        ));
    }
    for d in &h.databases {
        for ignored in &d.ignored_backups {
            out.push_str(&format!(
                "\nnot used as a backup of {}: {} {}\n",
                d.database,
                ignored.path.display(),
                ignored.reason
            ));
        }
    }
    let problems: Vec<_> = h.problems().collect();
    if problems.is_empty() {
        out.push_str("\nhealthy\n");
    } else {
        out.push_str(&format!("\n{} problem(s):\n", problems.len()));
        for (db, p) in problems {
            out.push_str(&format!(
                "  {} [{}]: {}\n    fix: {}\n",
                db.database, p.code, p.message, p.remedy
            ));
        }
    }
    out
}
