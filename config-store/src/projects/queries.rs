//! SQL for projects, their domains and their calendar keywords.

pub(crate) const INSERT_PROJECT: &str =
    "INSERT INTO projects (name, color, created_at_ms, archived) VALUES (?1, ?2, ?3, ?4)";

pub(crate) const SELECT_PROJECT: &str = "SELECT id, name, color, created_at_ms, archived FROM projects WHERE id = ?1";

pub(crate) const SELECT_PROJECTS: &str = "SELECT id, name, color, created_at_ms, archived FROM projects ORDER BY id";

pub(crate) const SELECT_PROJECT_NAMES: &str = "SELECT id, name FROM projects";

/// `?3` says whether to set the color at all, so that `NULL` in `?4` can clear it.
pub(crate) const UPDATE_PROJECT: &str = "UPDATE projects
    SET name = coalesce(?2, name),
        color = CASE WHEN ?3 THEN ?4 ELSE color END,
        archived = coalesce(?5, archived)
    WHERE id = ?1";

/// Domains and keywords go with it (ON DELETE CASCADE); calendar events keep their project_id.
pub(crate) const DELETE_PROJECT: &str = "DELETE FROM projects WHERE id = ?1";

pub(crate) const INSERT_DOMAIN: &str = "INSERT INTO project_domains (project_id, domain) VALUES (?1, ?2)";

/// `?2` as the caller spelled it (a legacy row may not be normalized), `?3` normalized.
pub(crate) const DELETE_DOMAIN: &str = "DELETE FROM project_domains WHERE project_id = ?1 AND domain IN (?2, ?3)";

pub(crate) const SELECT_DOMAINS_OF: &str = "SELECT domain FROM project_domains WHERE project_id = ?1 ORDER BY id";

pub(crate) const SELECT_ALL_DOMAINS: &str = "SELECT project_id, domain FROM project_domains ORDER BY id";

/// One indexed lookup (`project_domains_domain`, NOCASE like the comparison, so legacy rows written as
/// `GitHub.com` match too); the caller tries the host and then each parent domain. Archived projects never
/// match; among the rest the lowest id wins.
pub(crate) const PROJECT_FOR_DOMAIN: &str = "SELECT d.project_id
    FROM project_domains d JOIN projects p ON p.id = d.project_id
    WHERE d.domain = ?1 COLLATE NOCASE AND p.archived = 0
    ORDER BY d.project_id
    LIMIT 1";

pub(crate) const INSERT_KEYWORD: &str = "INSERT INTO project_calendar_keywords (project_id, keyword) VALUES (?1, ?2)";

/// `?2` as the caller spelled it (a legacy row may not be trimmed), `?3` trimmed.
pub(crate) const DELETE_KEYWORD: &str =
    "DELETE FROM project_calendar_keywords WHERE project_id = ?1 AND keyword IN (?2, ?3)";

pub(crate) const SELECT_KEYWORDS_OF: &str =
    "SELECT keyword FROM project_calendar_keywords WHERE project_id = ?1 ORDER BY id";

pub(crate) const SELECT_ALL_KEYWORDS: &str = "SELECT project_id, keyword FROM project_calendar_keywords ORDER BY id";
