//! Projects, the domains that attribute web activity to them, and the keywords that attribute calendar
//! events to them.
//!
//! # Domains
//! A domain is stored normalized ([`normalize_domain`]): trimmed, lower-cased, without a leading `*.` or
//! leading/trailing dots. So `GitHub.com`, `github.com.` and `*.github.com` are the same domain, and a
//! project cannot list it twice (`UNIQUE (project_id, domain)`). Anything that is not a host name (a URL, a
//! path, spaces) is refused with [`Error::InvalidInput`] instead of being stored where nothing would match it.
//!
//! # Which project owns a host ([`ConfigReader::project_for_domain`](crate::ConfigReader::project_for_domain))
//! - A listed domain matches itself and every subdomain: `example.com` matches `www.example.com` and
//!   `a.b.example.com`, never `notexample.com`.
//! - The most specific listed domain wins: with `example.com` on project 1 and `docs.example.com` on
//!   project 2, `docs.example.com` and `x.docs.example.com` belong to 2, `www.example.com` to 1.
//! - Archived projects never match (new activity is not attributed to an archived project).
//! - Several non-archived projects may list the same domain (the legacy data does); the lowest id wins,
//!   which is stable: ids are never reused.
//!
//! # Keywords
//! Stored trimmed, case kept; a project cannot list the same keyword twice.

pub(crate) mod queries;
pub(crate) mod repo;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::error::{Broken, Error, Result, broken_rule, store};

/// A project to create, with its domains and calendar keywords (all in one transaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProject {
    /// Trimmed; must not be empty.
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub archived: bool,
    /// Normalized with [`normalize_domain`]; listing one twice is [`Error::DuplicateDomain`].
    #[serde(default)]
    pub domains: Vec<String>,
    /// Trimmed; listing one twice is [`Error::DuplicateKeyword`].
    #[serde(default)]
    pub keywords: Vec<String>,
}

impl NewProject {
    /// A project with this name and nothing else.
    pub fn named(name: impl Into<String>) -> NewProject {
        NewProject {
            name: name.into(),
            ..NewProject::default()
        }
    }
}

/// A project as stored, with its domains and keywords in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The legacy id, kept: activity sessions and calendar events refer to it.
    pub id: i64,
    pub name: String,
    pub color: Option<String>,
    /// `None` for legacy projects whose creation time was missing or unreadable.
    pub created_at: Option<DateTime<Utc>>,
    pub archived: bool,
    pub domains: Vec<String>,
    pub keywords: Vec<String>,
}

/// A project without its domains and keywords: what a report needs to name and classify project ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub id: i64,
    pub name: String,
    pub color: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub archived: bool,
}

impl Project {
    fn from_parts(summary: ProjectSummary, domains: Vec<String>, keywords: Vec<String>) -> Project {
        let ProjectSummary {
            id,
            name,
            color,
            created_at,
            archived,
        } = summary;
        Project {
            id,
            name,
            color,
            created_at,
            archived,
            domains,
            keywords,
        }
    }

    /// The project without its domains and keywords.
    pub fn summary(&self) -> ProjectSummary {
        ProjectSummary {
            id: self.id,
            name: self.name.clone(),
            color: self.color.clone(),
            created_at: self.created_at,
            archived: self.archived,
        }
    }
}

/// Changes to a project: each `None` field is left as it is; all of it is one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectUpdate {
    #[serde(default)]
    pub name: Option<String>,
    /// `Some(None)` clears the color (JSON: `"color": null`; an absent field leaves it).
    #[serde(default, deserialize_with = "crate::serde_fields::present")]
    pub color: Option<Option<String>>,
    #[serde(default)]
    pub archived: Option<bool>,
    /// Replaces the list: domains not in it are removed, new ones added, kept ones keep their row.
    #[serde(default)]
    pub domains: Option<Vec<String>>,
    /// Replaces the list, like `domains`.
    #[serde(default)]
    pub keywords: Option<Vec<String>>,
}

/// The stored form of a domain: trimmed, lower-cased, without a leading `*.` and without leading or
/// trailing dots. `None` if nothing is left or it is not a host name (whitespace inside, or any of
/// `/ ? # @`, as in a URL). Writers of config.db (migrate-split too) store domains in this form.
pub fn normalize_domain(input: &str) -> Option<String> {
    let lower = input.trim().to_lowercase();
    let host = lower.strip_prefix("*.").unwrap_or(&lower).trim_matches('.');
    let unusable = |c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@');
    if host.is_empty() || host.contains(unusable) {
        return None;
    }
    Some(host.to_string())
}

/// What [`ConfigReader::project_for_domain`](crate::ConfigReader::project_for_domain) looks up for `host`,
/// most specific first: the host itself, then each parent domain (`a.b.c` -> `a.b.c`, `b.c`, `c`).
pub(crate) fn lookup_candidates(host: &str) -> Vec<String> {
    let host = host.trim().to_lowercase();
    let host = host.trim_matches('.');
    if host.is_empty() {
        return Vec::new();
    }
    let mut out = vec![host.to_string()];
    out.extend(
        host.match_indices('.')
            .map(|(i, _)| &host[i + 1..])
            .filter(|s| !s.is_empty() && !s.starts_with('.'))
            .map(str::to_string),
    );
    out
}

fn checked_domain(path: &Path, input: &str) -> Result<String> {
    normalize_domain(input).ok_or_else(|| Error::InvalidInput {
        path: path.to_path_buf(),
        field: "domain",
        problem: format!(
            "{input:?} is not a host name: write it like example.com (no scheme, path, spaces or '@'); it also \
             matches every subdomain"
        ),
    })
}

fn checked_keyword(path: &Path, input: &str) -> Result<String> {
    let keyword = input.trim();
    if keyword.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "calendar keyword",
            problem: "is empty".into(),
        });
    }
    Ok(keyword.to_string())
}

fn checked_name(path: &Path, input: &str) -> Result<String> {
    let name = input.trim();
    if name.is_empty() {
        return Err(Error::InvalidInput {
            path: path.to_path_buf(),
            field: "project name",
            problem: "is empty".into(),
        });
    }
    Ok(name.to_string())
}

/// Normalizes a list of domains and refuses one listed twice, before anything is written.
fn checked_domains(path: &Path, project_id: Option<i64>, input: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    input
        .iter()
        .map(|d| {
            let domain = checked_domain(path, d)?;
            if !seen.insert(domain.clone()) {
                return Err(Error::DuplicateDomain {
                    path: path.to_path_buf(),
                    project_id,
                    domain,
                });
            }
            Ok(domain)
        })
        .collect()
}

fn checked_keywords(path: &Path, project_id: Option<i64>, input: &[String]) -> Result<Vec<String>> {
    let mut seen = HashSet::new();
    input
        .iter()
        .map(|k| {
            let keyword = checked_keyword(path, k)?;
            if !seen.insert(keyword.clone()) {
                return Err(Error::DuplicateKeyword {
                    path: path.to_path_buf(),
                    project_id,
                    keyword,
                });
            }
            Ok(keyword)
        })
        .collect()
}

/// Inserts a normalized domain, naming the broken rule: an existing row is a duplicate, a missing parent
/// is a missing project.
fn insert_domain(conn: &Connection, path: &Path, project_id: i64, domain: String) -> Result<()> {
    repo::insert_domain(conn, project_id, &domain).map_err(|e| match broken_rule(&e) {
        Some(Broken::Unique) => Error::DuplicateDomain {
            path: path.to_path_buf(),
            project_id: Some(project_id),
            domain,
        },
        Some(Broken::ForeignKey) => Error::ProjectNotFound {
            path: path.to_path_buf(),
            id: project_id,
        },
        None => store(path, e),
    })
}

fn insert_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: String) -> Result<()> {
    repo::insert_keyword(conn, project_id, &keyword).map_err(|e| match broken_rule(&e) {
        Some(Broken::Unique) => Error::DuplicateKeyword {
            path: path.to_path_buf(),
            project_id: Some(project_id),
            keyword,
        },
        Some(Broken::ForeignKey) => Error::ProjectNotFound {
            path: path.to_path_buf(),
            id: project_id,
        },
        None => store(path, e),
    })
}

/// Inside the caller's transaction: the project row, then its domains, then its keywords.
pub(crate) fn create(conn: &Connection, path: &Path, new: &NewProject, now: DateTime<Utc>) -> Result<Project> {
    let name = checked_name(path, &new.name)?;
    // Input is checked before the first write (a duplicate names no project: it has no id yet).
    let domains = checked_domains(path, None, &new.domains)?;
    let keywords = checked_keywords(path, None, &new.keywords)?;
    let created_at_ms = store_core::time::to_ms(now);
    let id = repo::insert_project(conn, &name, new.color.as_deref(), created_at_ms, new.archived)
        .map_err(|e| store(path, e))?;
    for domain in domains {
        insert_domain(conn, path, id, domain)?;
    }
    for keyword in keywords {
        insert_keyword(conn, path, id, keyword)?;
    }
    read_back(conn, path, id)
}

/// Inside the caller's transaction: the scalar fields, then the domain and keyword lists if given.
pub(crate) fn update(conn: &Connection, path: &Path, id: i64, update: &ProjectUpdate) -> Result<Project> {
    let name = update.name.as_deref().map(|n| checked_name(path, n)).transpose()?;
    let domains = update
        .domains
        .as_deref()
        .map(|d| checked_domains(path, Some(id), d))
        .transpose()?;
    let keywords = update
        .keywords
        .as_deref()
        .map(|k| checked_keywords(path, Some(id), k))
        .transpose()?;
    let color = update.color.as_ref().map(|c| c.as_deref());
    let exists = repo::update_project(conn, id, name.as_deref(), color, update.archived).map_err(|e| store(path, e))?;
    if !exists {
        return Err(Error::ProjectNotFound {
            path: path.to_path_buf(),
            id,
        });
    }
    if let Some(wanted) = domains {
        let current = repo::domains_of(conn, id).map_err(|e| store(path, e))?;
        for old in current.iter().filter(|d| !wanted.contains(d)) {
            repo::delete_domain(conn, id, old, old).map_err(|e| store(path, e))?;
        }
        for new in wanted.into_iter().filter(|d| !current.contains(d)) {
            insert_domain(conn, path, id, new)?;
        }
    }
    if let Some(wanted) = keywords {
        let current = repo::keywords_of(conn, id).map_err(|e| store(path, e))?;
        for old in current.iter().filter(|k| !wanted.contains(k)) {
            repo::delete_keyword(conn, id, old, old).map_err(|e| store(path, e))?;
        }
        for new in wanted.into_iter().filter(|k| !current.contains(k)) {
            insert_keyword(conn, path, id, new)?;
        }
    }
    read_back(conn, path, id)
}

/// Adds one domain; returns it as stored (normalized).
pub(crate) fn add_domain(conn: &Connection, path: &Path, project_id: i64, domain: &str) -> Result<String> {
    let domain = checked_domain(path, domain)?;
    insert_domain(conn, path, project_id, domain.clone())?;
    Ok(domain)
}

/// Removes a domain given as stored or in any spelling that normalizes to it.
pub(crate) fn remove_domain(conn: &Connection, path: &Path, project_id: i64, domain: &str) -> Result<bool> {
    let normalized = normalize_domain(domain).unwrap_or_default();
    repo::delete_domain(conn, project_id, domain, &normalized).map_err(|e| store(path, e))
}

/// Adds one keyword; returns it as stored (trimmed).
pub(crate) fn add_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: &str) -> Result<String> {
    let keyword = checked_keyword(path, keyword)?;
    insert_keyword(conn, path, project_id, keyword.clone())?;
    Ok(keyword)
}

/// Removes a keyword given as stored or with surrounding whitespace.
pub(crate) fn remove_keyword(conn: &Connection, path: &Path, project_id: i64, keyword: &str) -> Result<bool> {
    repo::delete_keyword(conn, project_id, keyword, keyword.trim()).map_err(|e| store(path, e))
}

fn read_back(conn: &Connection, path: &Path, id: i64) -> Result<Project> {
    repo::project(conn, id)
        .map_err(|e| store(path, e))?
        .ok_or_else(|| Error::ProjectNotFound {
            path: path.to_path_buf(),
            id,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_normalize_to_one_spelling() {
        for spelling in [
            "example.com",
            " Example.COM ",
            "example.com.",
            "*.example.com",
            ".example.com",
        ] {
            assert_eq!(
                normalize_domain(spelling).as_deref(),
                Some("example.com"),
                "{spelling:?}"
            );
        }
        assert_eq!(normalize_domain("localhost:3000").as_deref(), Some("localhost:3000"));
        assert_eq!(normalize_domain("Bücher.DE").as_deref(), Some("bücher.de"));
    }

    #[test]
    fn what_is_not_a_host_name_is_refused() {
        for bad in [
            "",
            "  ",
            ".",
            "*.",
            "https://example.com",
            "example.com/path",
            "a b.com",
            "user@host",
            "x.com?q",
        ] {
            assert_eq!(normalize_domain(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookups_try_the_host_then_each_parent() {
        assert_eq!(
            lookup_candidates(" WWW.Docs.Example.com. "),
            ["www.docs.example.com", "docs.example.com", "example.com", "com"]
        );
        assert_eq!(lookup_candidates("localhost"), ["localhost"]);
        assert!(lookup_candidates(" . ").is_empty());
        assert_eq!(lookup_candidates("a..b"), ["a..b", "b"]);
    }
}
