//! Filesystem steps around database files: private modes, fsync, atomic placement, moving aside.
//!
//! SQLite creates `-wal`, `-shm` and `-journal` with the mode of the database file (os_unix.c,
//! `findCreateFileMode`), so creating the database 0600 before SQLite opens it keeps all of them private.
//! New files made any other way are 0644 minus umask (sqlite-hazards: "Backups and restore").
//!
//! Never open and close a database (or its `-wal`/`-shm`) with `std::fs` while a SQLite connection to it is
//! open in this process: closing any descriptor drops all of SQLite's POSIX locks on the file
//! (https://sqlite.org/howtocorrupt.html §2.2). Functions here that open files say so; callers use them
//! only on files no connection of this process has open. `metadata`/`rename` do not open the file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Mode of every file splitstore creates: the database, its sidecars, backups, rejects and lock files.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the directories splitstore creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) with mode 0700. An existing directory is left as it is.
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|e| dir_error(dir, "create the directory", e))
}

/// Opens (creating if missing) a private read-write file, and tightens its mode to 0600 if it was wider.
/// Opens a descriptor: not for a database this process has a connection to.
pub fn open_private(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .map_err(|e| dir_error(path, "open", e))?;
    tighten(&file, path)?;
    Ok(file)
}

/// Creates a new private file; fails if it exists. Opens a descriptor (see [`open_private`]).
pub fn create_private_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
        .map_err(|e| dir_error(path, "create", e))
}

/// Sets 0600 on `path` if it exists with a wider mode. Uses `chmod` on the path: no descriptor is opened.
pub fn ensure_private(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
            fs::set_permissions(path, fs::Permissions::from_mode(PRIVATE_FILE_MODE))
                .map_err(|e| Error::io(path, "restrict the mode of", e))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "read the metadata of", e)),
    }
}

fn tighten(file: &File, path: &Path) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path, "read the metadata of", e))?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
            .map_err(|e| Error::io(path, "restrict the mode of", e))?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Refuses `path` if it is a symbolic link: everything the stores write lives in the data directory, and a
/// planted link would make them write (or chmod) whatever it points at. A missing path is fine.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::UnsafePath {
            path: path.to_path_buf(),
            problem: "is a symbolic link".into(),
        }),
        _ => Ok(()),
    }
}

/// fsyncs a file by path. Opens a descriptor: only for files no connection of this process has open.
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(path, "fsync", e))
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, "fsync the directory", e))
}

/// Renames `from` to `to` (same directory) and fsyncs the directory.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| Error::io(from, "rename", e))?;
    sync_dir(to.parent().unwrap_or(Path::new(".")))
}

/// The sidecar files SQLite keeps beside a database.
pub fn sidecars(db: &Path) -> [PathBuf; 3] {
    [
        with_suffix(db, "-wal"),
        with_suffix(db, "-shm"),
        with_suffix(db, "-journal"),
    ]
}

/// `path` with `suffix` appended to its file name (`activity.db` + `.lock` = `activity.db.lock`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// A compact UTC timestamp for file names, sortable as text: `20261121T235614.123Z`.
pub fn name_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Moves a database and its sidecars aside as `<name>.<tag>-<time>` (never deletes). Returns the new
/// path of the database, or `None` if there was nothing to move. The database must not be open.
pub fn move_aside(db: &Path, tag: &str) -> Result<Option<PathBuf>> {
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    if !exists(db) && sidecars(db).iter().all(|p| !exists(p)) {
        return Ok(None);
    }
    let stamp = name_timestamp(Utc::now());
    let mut target = with_suffix(db, &format!(".{tag}-{stamp}"));
    let mut n = 1;
    while exists(&target) || sidecars(&target).iter().any(|p| exists(p)) {
        target = with_suffix(db, &format!(".{tag}-{stamp}-{n}"));
        n += 1;
    }
    // Sidecars first: a database without its -wal would lose committed rows, so the pair moves together
    // and the database itself moves last.
    for (from, to) in sidecars(db).iter().zip(sidecars(&target).iter()) {
        if exists(from) {
            fs::rename(from, to).map_err(|e| Error::io(from, "move aside", e))?;
        }
    }
    if exists(db) {
        fs::rename(db, &target).map_err(|e| Error::io(db, "move aside", e))?;
    }
    sync_dir(db.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(target))
}

/// An I/O error on `path`, typed [`Error::ReadOnlyDirectory`] when the directory refuses writes.
fn dir_error(path: &Path, action: &'static str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EROFS) => Error::ReadOnlyDirectory {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, action, e),
    }
}
