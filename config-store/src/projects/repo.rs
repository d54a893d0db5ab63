//! Typed access to projects, domains and keywords, one statement per function. Every function takes a
//! plain connection (a transaction derefs to one), so reads serve the owner and read-only pools alike.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Row, params};
use store_core::conn_ext::in_table;
use store_core::time::get_opt_time;

use super::queries;
use super::{Project, ProjectSummary};

fn summary_row(row: &Row<'_>) -> rusqlite::Result<ProjectSummary> {
    in_table("projects", row, |row| {
        Ok(ProjectSummary {
            id: row.get(0)?,
            name: row.get(1)?,
            color: row.get(2)?,
            created_at: get_opt_time(row, 3)?,
            archived: row.get::<_, i64>(4)? != 0,
        })
    })
}

pub(crate) fn insert_project(
    conn: &Connection,
    name: &str,
    color: Option<&str>,
    created_at_ms: i64,
    archived: bool,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(queries::INSERT_PROJECT)?
        .execute(params![name, color, created_at_ms, archived])?;
    Ok(conn.last_insert_rowid())
}

/// Sets the fields given (`color: Some(None)` clears the color); returns whether the project exists.
pub(crate) fn update_project(
    conn: &Connection,
    id: i64,
    name: Option<&str>,
    color: Option<Option<&str>>,
    archived: Option<bool>,
) -> rusqlite::Result<bool> {
    let changed = conn.prepare_cached(queries::UPDATE_PROJECT)?.execute(params![
        id,
        name,
        color.is_some(),
        color.flatten(),
        archived,
    ])?;
    Ok(changed > 0)
}

pub(crate) fn delete_project(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    Ok(conn.prepare_cached(queries::DELETE_PROJECT)?.execute([id])? > 0)
}

pub(crate) fn insert_domain(conn: &Connection, project_id: i64, domain: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_DOMAIN)?
        .execute(params![project_id, domain])
        .map(drop)
}

/// Deletes the row spelled `as_stored` or `normalized` (a legacy row may not be normalized).
pub(crate) fn delete_domain(
    conn: &Connection,
    project_id: i64,
    as_stored: &str,
    normalized: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(queries::DELETE_DOMAIN)?
        .execute(params![project_id, as_stored, normalized])?
        > 0)
}

pub(crate) fn domains_of(conn: &Connection, project_id: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(queries::SELECT_DOMAINS_OF)?
        .query_map([project_id], |r| in_table("project_domains", r, |r| r.get(0)))?
        .collect()
}

pub(crate) fn insert_keyword(conn: &Connection, project_id: i64, keyword: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(queries::INSERT_KEYWORD)?
        .execute(params![project_id, keyword])
        .map(drop)
}

/// Deletes the row spelled `as_stored` or `trimmed` (a legacy row may not be trimmed).
pub(crate) fn delete_keyword(
    conn: &Connection,
    project_id: i64,
    as_stored: &str,
    trimmed: &str,
) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached(queries::DELETE_KEYWORD)?
        .execute(params![project_id, as_stored, trimmed])?
        > 0)
}

pub(crate) fn keywords_of(conn: &Connection, project_id: i64) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(queries::SELECT_KEYWORDS_OF)?
        .query_map([project_id], |r| in_table("project_calendar_keywords", r, |r| r.get(0)))?
        .collect()
}

/// One project with its domains and keywords (in the order they were added).
pub(crate) fn project(conn: &Connection, id: i64) -> rusqlite::Result<Option<Project>> {
    let Some(summary) = conn
        .prepare_cached(queries::SELECT_PROJECT)?
        .query_row([id], summary_row)
        .optional()?
    else {
        return Ok(None);
    };
    Ok(Some(Project::from_parts(
        summary,
        domains_of(conn, id)?,
        keywords_of(conn, id)?,
    )))
}

/// Every project without its domains and keywords, by id: one query.
pub(crate) fn project_summaries(conn: &Connection) -> rusqlite::Result<Vec<ProjectSummary>> {
    conn.prepare_cached(queries::SELECT_PROJECTS)?
        .query_map([], summary_row)?
        .collect()
}

/// Every project, archived ones included, by id, with domains and keywords: three queries whatever the
/// number of projects.
pub(crate) fn projects(conn: &Connection) -> rusqlite::Result<Vec<Project>> {
    let mut projects: Vec<Project> = project_summaries(conn)?
        .into_iter()
        .map(|summary| Project::from_parts(summary, Vec::new(), Vec::new()))
        .collect();
    let index: HashMap<i64, usize> = projects.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    let mut stmt = conn.prepare_cached(queries::SELECT_ALL_DOMAINS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        // A child of a missing project cannot exist with foreign keys on; skip it rather than invent one.
        let (project_id, domain) = in_table("project_domains", row, |r| Ok((r.get::<_, i64>(0)?, r.get(1)?)))?;
        if let Some(&i) = index.get(&project_id) {
            projects[i].domains.push(domain);
        }
    }
    let mut stmt = conn.prepare_cached(queries::SELECT_ALL_KEYWORDS)?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (project_id, keyword) = in_table("project_calendar_keywords", row, |r| {
            Ok((r.get::<_, i64>(0)?, r.get(1)?))
        })?;
        if let Some(&i) = index.get(&project_id) {
            projects[i].keywords.push(keyword);
        }
    }
    Ok(projects)
}

pub(crate) fn project_names(conn: &Connection) -> rusqlite::Result<HashMap<i64, String>> {
    conn.prepare_cached(queries::SELECT_PROJECT_NAMES)?
        .query_map([], |r| in_table("projects", r, |r| Ok((r.get(0)?, r.get(1)?))))?
        .collect()
}

/// The first candidate (most specific first) that a non-archived project lists decides.
pub(crate) fn project_for_domain(conn: &Connection, candidates: &[&str]) -> rusqlite::Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(queries::PROJECT_FOR_DOMAIN)?;
    for candidate in candidates {
        if let Some(id) = stmt.query_row([candidate], |r| r.get(0)).optional()? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}
