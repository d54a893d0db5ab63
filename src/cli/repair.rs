//! `splitstore repair`: quarantine a damaged database and restore the newest good backup (or, for activity.db
//! only and only with --allow-empty, start it empty; or, with --salvage, copy every row that can still be
//! read into a new file on top of the newest good backup). A file that is not damaged but has a table out of
//! ids has its ids from 2^62 up moved down in place. Nothing is ever deleted.

use std::path::PathBuf;
use std::process::ExitCode;

use splitstore::operations::{RepairAction, RepairOptions};
use store_core::orphans::OrphansRemoved;
use store_core::renumber::Renumbered;
use store_core::salvage::SalvageReport;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Directory holding activity.db and config.db.
    #[arg(long, value_name = "DIR", value_parser = super::absolute_path())]
    pub data_dir: PathBuf,
    /// Where to look for backups. Default: DATA_DIR/backups.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// With no good backup, start activity.db empty (config.db only when nothing of it is left to keep: gone,
    /// or a file a salvage reads nothing of: empty, its schema unreadable).
    #[arg(long)]
    pub allow_empty: bool,
    /// Copy every row of a damaged file that can still be read into a new file (on top of the newest good
    /// backup, if any: its rows, updated where the damaged file changed them, plus the rows it lacks), verify
    /// it and put it in place. Works for both databases.
    #[arg(long)]
    pub salvage: bool,
    /// Restore the newest good backup even when the damaged file added rows after it was taken: those rows
    /// are left out (the damaged file is kept). Without it, such a repair is refused and --salvage suggested.
    #[arg(long, conflicts_with = "salvage")]
    pub accept_older_backup: bool,
    /// Print what was done as one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub key: super::KeyArgs,
}

pub fn run(args: Args) -> ExitCode {
    let key = match super::start(&args.data_dir, &args.key) {
        Ok(key) => key,
        Err(e) => return super::fail_json("repair", &e, args.json),
    };
    let from = args
        .from
        .unwrap_or_else(|| args.data_dir.join(store_core::backup::BACKUP_DIR_NAME));
    let opts = RepairOptions {
        allow_empty: args.allow_empty,
        salvage: args.salvage,
        accept_older_backup: args.accept_older_backup,
        key,
        waits: super::command_waits("repair"),
        ..RepairOptions::default()
    };
    let actions = match splitstore::operations::repair(&args.data_dir, &from, &opts) {
        Ok(actions) => actions,
        Err(e) => return super::fail_json("repair", &e, args.json),
    };
    // A table out of ids left as it is: the owner still adds no row to it, so the repair did not succeed.
    let done = if actions.iter().any(|a| matches!(a, RepairAction::IdsLeft { .. })) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    };
    if args.json {
        let object = serde_json::json!({ "data_dir": args.data_dir.to_string_lossy(), "actions": actions });
        return match serde_json::to_string_pretty(&object) {
            Ok(json) => {
                super::say!("{json}");
                done
            }
            Err(e) => super::fail("repair", &e),
        };
    }
    for a in actions {
        let aside = |q: &Option<PathBuf>| {
            q.as_ref()
                .map(|q| {
                    let kept = super::kept_at(
                        q,
                        " (damaged file kept at",
                        " (there was no file; what was beside its path is kept at",
                    );
                    format!("{kept})")
                })
                .unwrap_or_default()
        };
        match a {
            RepairAction::OrphanWalSetAside { database, wal } => super::say!(
                "{database}: its -wal held the last writes of the file replaced or removed by hand, not of this \
                 one: moved aside to {} with its -shm (nothing is deleted)",
                wal.display()
            ),
            RepairAction::Healthy { database } => super::say!("{database}: healthy, left alone"),
            RepairAction::HeaderIdsRestored {
                database,
                version,
                lowered_from: None,
            } => super::say!(
                "{database}: rebuilt without its header ids (application_id, user_version); its tables are this \
                 build's schema {version} exactly: ids written back, every row kept"
            ),
            RepairAction::HeaderIdsRestored {
                database,
                version,
                lowered_from: Some(found),
            } => super::say!(
                "{database}: its user_version read {found}, set back by hand below the migrations it records; its \
                 tables are this build's schema {version} exactly: user_version {version} written back, every row kept"
            ),
            RepairAction::IdsGiven { database, renumbered } => super::say!("{database}: {}", ids_given(&renumbered)),
            RepairAction::IdsLeft {
                database,
                table,
                being_replaced,
            } => super::say!(
                "{database}: {table} has handed out id {}, the largest SQLite allows, and takes no more rows; left \
                 as it is while {} is repaired, since its rows name the table's ids: run this repair again to give \
                 it smaller ones",
                i64::MAX,
                being_replaced.join(" and ")
            ),
            // Moved since doctor looked (another repair): nothing left to say but that.
            RepairAction::IdsMoved { database, moved } if moved.is_empty() => {
                super::say!("{database}: healthy, left alone")
            }
            RepairAction::IdsMoved { database, moved } => {
                for c in moved {
                    super::say!(
                        "{database}: named {} by the ids a repair gave smaller ones since (it was put back from \
                         before that repair): moved to the new ({})",
                        c.table,
                        c.places()
                    );
                }
            }
            RepairAction::Missing { database } => {
                super::say!("{database}: does not exist, nothing to repair (its owner creates it when it starts)")
            }
            RepairAction::OrphansRemoved { database, removed } => {
                super::say!("{database}: {}", orphans_removed(&removed))
            }
            RepairAction::SchemaObjectsRestored { database, restored } => {
                let names: Vec<String> = restored.iter().map(ToString::to_string).collect();
                super::say!(
                    "{database}: created again as this build's schema has them: {} (in one transaction recorded in \
                     its provenance)",
                    names.join(", ")
                )
            }
            RepairAction::TotalsRecounted { database, found } => super::say!(
                "{database}: {}: recounted from the sessions it holds, from {} on (before it the totals keep what \
                 retention pruned), in one transaction recorded in its provenance",
                found.detail,
                store_core::time::show_ms(found.since_ms)
            ),
            RepairAction::AutoVacuumRestored { database } => super::say!(
                "{database}: auto_vacuum, turned off by a tool, set back to INCREMENTAL (a VACUUM rewrote the file \
                 in place, every row kept): retention gives the space it frees back to the disk again"
            ),
            RepairAction::Restored {
                database,
                quarantined,
                report,
            } => {
                // Said only of a backup older than this build (a pre-migration one, say).
                let older = match super::upgraded_later(&report) {
                    later if later.is_empty() => later,
                    later => format!(" (schema {}{later})", report.version),
                };
                super::say!(
                    "{database}: restored from {}{older}{}{}{}{}",
                    report.restored_from.display(),
                    super::passed_over(&report),
                    aside(&quarantined),
                    super::left_out(&report),
                    super::ids_moved(&report)
                )
            }
            RepairAction::StartedEmpty { database, quarantined } => {
                super::say!("{database}: started empty{}", aside(&quarantined))
            }
            RepairAction::Salvaged {
                database,
                quarantined,
                report,
            } => print_salvage(database, &aside(&quarantined), &report),
            other => super::say!("{other:?}"),
        }
    }
    done
}

/// What removing rows that named a missing parent did, said in one sentence: the tables and their ids (the
/// first ten of each).
fn orphans_removed(removed: &[OrphansRemoved]) -> String {
    let rows: usize = removed.iter().map(|r| r.ids.len()).sum();
    let tables: Vec<String> = removed
        .iter()
        .map(|r| {
            let mut ids: Vec<String> = r.ids.iter().take(10).map(i64::to_string).collect();
            if r.ids.len() > 10 {
                ids.push(format!("and {} more", r.ids.len() - 10));
            }
            format!("{} {} (of {})", r.table, ids.join(", "), r.parent)
        })
        .collect();
    format!(
        "removed {rows} row(s) naming a row deleted by a tool with foreign keys off (as the sqlite3 shell \
         deletes), as that delete removes them with foreign keys on: {}; their ids are recorded in its \
         provenance, their values only in a backup taken before",
        tables.join("; ")
    )
}

/// What giving a table out of ids smaller ones did, said in one sentence.
fn ids_given(r: &Renumbered) -> String {
    let far = store_core::renumber::FAR_IDS;
    let moved = match r.moved {
        0 => format!("no row held an id from {far} up (the one at the limit was deleted)"),
        1 => format!("its row with an id from {far} up now has id {}", r.first),
        n => format!(
            "its {n} rows with ids from {far} up now have ids {} to {}, in the same order",
            r.first, r.last
        ),
    };
    let references: Vec<String> = r
        .references
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(column, n)| format!("{n} in {column}"))
        .collect();
    let references = if references.is_empty() {
        String::new()
    } else {
        format!(", the references to them with them ({})", references.join(", "))
    };
    format!(
        "{} had handed out id {}, the largest SQLite allows, and took no more rows: {moved}{references}; new rows \
         get ids from {}; take a new backup: those taken before hold the old ids",
        r.table,
        i64::MAX,
        r.last + 1
    )
}

/// One line for the database, then a table: per table, rows salvaged, from the backup, known lost.
fn print_salvage(database: &str, aside: &str, report: &SalvageReport) {
    let base = report
        .base_backup
        .as_ref()
        .map(|b| format!(" on top of the backup {}", b.display()))
        .unwrap_or_default();
    super::say!(
        "{database}: salvaged {} rows{base}, {}{aside}",
        report.salvaged(),
        report.lost_said()
    );
    let width = report.tables.keys().map(String::len).max().unwrap_or(5).max(5);
    super::say!(
        "  {:<width$}  {:>10}  {:>11}  {:>10}",
        "table",
        "salvaged",
        "from backup",
        "known lost"
    );
    for (name, t) in &report.tables {
        let mut extra = Vec::new();
        if t.rejected > 0 {
            extra.push(format!("{} refused by the schema", t.rejected));
        }
        if t.already_in_backup > 0 {
            extra.push(format!("{} already in the backup", t.already_in_backup));
        }
        if t.updated > 0 {
            extra.push(format!("{} of the backup's updated to the damaged file's", t.updated));
        }
        if t.derived > 0 {
            extra.push(format!("{} derived from the rows salvaged", t.derived));
        }
        if let Some(basis) = &t.known_lost_basis {
            let at_most = if t.lost_is_upper_bound() { "at most, " } else { "" };
            extra.push(format!("lost {at_most}counted from {basis}"));
        }
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join("; "))
        };
        super::say!(
            "  {name:<width$}  {:>10}  {:>11}  {:>10}{extra}",
            t.salvaged,
            t.from_backup,
            t.known_lost
        );
    }
    for note in &report.notes {
        super::say!("  note: {note}");
    }
}
