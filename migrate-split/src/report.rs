//! What a split did, per table: the JSON the binary prints with `--json`, and the human summary.
//! Nothing here ever holds a settings value.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::progress::PhaseTime;

/// The legacy file that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LegacyInfo {
    #[serde(with = "store_core::files::lossy_path")]
    pub path: PathBuf,
    /// Its schema version (`PRAGMA user_version`): 1, 2 or 3.
    pub version: u32,
    /// sha256 of its bytes (a split checks that nothing changed the file from before it opened it to the
    /// end): the same before and after a split.
    pub sha256: String,
}

/// Rows of one legacy table, accounted for: `legacy = copied + rejected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCounts {
    /// Rows in the legacy table.
    pub legacy: u64,
    /// Rows now in the output table, same ids and values (times converted).
    pub copied: u64,
    /// Rows written to the rejects file instead (unparseable time, duplicate, orphan, NULL key).
    pub rejected: u64,
    /// Rows whose reference names no row of the outputs: kept ones (a session of a deleted project, an event
    /// without a session, a calendar event of a deleted project) plus rejected orphans (a domain, keyword or
    /// calendar event whose parent config.db cannot have).
    pub dangling: u64,
    /// Of `rejected`: legacy duplicates of a row the output's UNIQUE constraint keeps once.
    pub duplicates: u64,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// The outputs were written, verified and put in place.
    Split,
    /// The outputs already record a completed split of this same legacy file; nothing was touched.
    AlreadySplit,
    /// `--dry-run`: the full conversion ran in a scratch directory, nothing was written in the data directory.
    DryRun,
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub legacy: LegacyInfo,
    #[serde(with = "store_core::files::lossy_path")]
    pub data_dir: PathBuf,
    /// Per legacy table the version has, by name.
    pub tables: BTreeMap<String, TableCounts>,
    /// Tables no legacy version has: left in the legacy file, not copied.
    pub unknown_tables: Vec<String>,
    /// `DIR/split-rejects.jsonl` when rows were rejected (for `already_split`, if it exists).
    #[serde(with = "store_core::files::lossy_path::option")]
    pub rejects_file: Option<PathBuf>,
    /// The id recorded in both outputs' `provenance` table (none for a dry run).
    pub split_id: Option<String>,
    /// Files moved aside before the split (`--force`, or an unfinished earlier split).
    #[serde(with = "store_core::files::lossy_path::vec")]
    pub moved_aside: Vec<PathBuf>,
    /// Leftovers of a killed earlier run that were removed (temporary files only).
    #[serde(with = "store_core::files::lossy_path::vec")]
    pub cleaned_up: Vec<PathBuf>,
    /// For a dry run: the output files that exist in the data directory now.
    pub existing_outputs: Vec<String>,
    pub warnings: Vec<String>,
    /// Where the time went: each phase (checking the legacy file, copying each table, building indexes,
    /// verifying, closing, putting the outputs in place) and its seconds.
    pub phases: Vec<PhaseTime>,
    pub seconds: f64,
}

impl Report {
    /// Sum of the rejected rows of every table.
    pub fn rejected(&self) -> u64 {
        self.tables.values().map(|t| t.rejected).sum()
    }

    /// Warns of output tables (`file's table`) that have handed out the largest id SQLite allows: their owner's
    /// first insert fails there (`ids_exhausted`), said now rather than at the first start.
    pub(crate) fn warn_out_of_ids(&mut self, tables: &[String]) {
        self.warnings.extend(tables.iter().map(|table| {
            format!(
                "{table} has handed out id {}, the largest SQLite allows (a legacy row holds it): no row can be \
                 added to it until `splitstore repair` gives that row a smaller free id (docs/upgrade.md, \"A table \
                 out of ids\")",
                i64::MAX
            )
        }));
    }

    /// What the user has to know beyond the counts, one line each: files moved aside or removed, the rows
    /// rejected and where they went, warnings (tables not copied, say). Part of
    /// [`human_summary`](Self::human_summary), and all an application's first start says besides its line.
    pub fn notices(&self) -> Vec<String> {
        let mut lines: Vec<String> = Vec::new();
        lines.extend(self.moved_aside.iter().map(|p| format!("moved aside: {}", p.display())));
        lines.extend(
            self.cleaned_up
                .iter()
                .map(|p| format!("removed a leftover of an interrupted run: {}", p.display())),
        );
        if !self.existing_outputs.is_empty() {
            lines.push(format!("outputs that exist now: {}", self.existing_outputs.join(", ")));
        }
        match (&self.rejects_file, self.rejected()) {
            (Some(p), n) => lines.push(format!("{n} rejected row(s) written to {}", p.display())),
            (None, 0) => {}
            (None, n) => lines.push(format!("{n} row(s) would be rejected")),
        }
        lines.extend(self.warnings.iter().map(|w| format!("warning: {w}")));
        lines
    }

    /// The multi-line summary printed on stderr.
    pub fn human_summary(&self) -> String {
        let mut s = String::new();
        let head = match self.outcome {
            Outcome::Split => "split",
            Outcome::AlreadySplit => "already split (nothing changed)",
            Outcome::DryRun => "dry run (nothing written)",
        };
        let _ = writeln!(
            s,
            "migrate-split: {head}: {} (legacy version {}, sha256 {}) -> {} in {:.2} s",
            self.legacy.path.display(),
            self.legacy.version,
            self.legacy.sha256,
            self.data_dir.display(),
            self.seconds
        );
        let _ = writeln!(
            s,
            "  {:<28}{:>12}{:>12}{:>10}{:>10}{:>12}",
            "table", "legacy", "copied", "rejected", "dangling", "duplicates"
        );
        for (name, c) in crate::queries::TABLES
            .iter()
            .filter_map(|t| self.tables.get(t.name).map(|c| (t.name, c)))
        {
            let _ = writeln!(
                s,
                "  {name:<28}{:>12}{:>12}{:>10}{:>10}{:>12}",
                c.legacy, c.copied, c.rejected, c.dangling, c.duplicates
            );
        }
        if let Some(id) = &self.split_id {
            let _ = writeln!(s, "  split id: {id}");
        }
        for notice in self.notices() {
            let _ = writeln!(s, "  {notice}");
        }
        // One line: the phases that count (2% of the run or more) by name, the others summed (the copies of
        // config.db's small tables take milliseconds of a split's seconds).
        let (shown, shorter): (Vec<&PhaseTime>, Vec<&PhaseTime>) =
            self.phases.iter().partition(|p| p.seconds >= self.seconds * 0.02);
        let mut parts: Vec<String> = shown
            .iter()
            .map(|p| format!("{} {:.2} s", p.phase, p.seconds))
            .collect();
        if !shorter.is_empty() {
            let seconds: f64 = shorter.iter().map(|p| p.seconds).sum();
            parts.push(format!("{} shorter phase(s) {seconds:.2} s", shorter.len()));
        }
        if !parts.is_empty() {
            let _ = writeln!(s, "  time: {}", parts.join(", "));
        }
        s
    }
}
