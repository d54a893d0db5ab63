//! Filesystem steps around database files: private modes, no links followed, fsync, atomic placement,
//! moving aside.
//!
//! SQLite creates `-wal`, `-shm` and `-journal` with the mode of the database file (os_unix.c,
//! `findCreateFileMode`), so creating the database 0600 before SQLite opens it keeps all of them private.
//! New files made any other way are 0644 minus umask (hazards: "Private files").
//!
//! Nothing here writes or changes the mode of anything outside the data directory: files are opened with
//! `O_NOFOLLOW` and checked to be regular files after opening (a planted symbolic link or FIFO is refused
//! with [`Error::UnsafePath`]), modes are changed through the opened descriptor, and a data directory that
//! other users may write (where such links could be planted) is refused ([`check_private_dir`]).
//!
//! Never open and close a database (or its `-wal`/`-shm`) with `std::fs` while a SQLite connection to it is
//! open in this process: closing any descriptor drops all of SQLite's POSIX locks on the file
//! (<https://sqlite.org/howtocorrupt.html> §2.2; hazards: "The ownership lock"). Functions here that open
//! files say so; callers use them only on files no connection of this process has open.
//! `metadata`/`rename` do not open the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// Which file a path names: (device, inode). The same path names another file once something was put in
/// its place (a restore's rename, a removed lock file made again).
pub type FileId = (u64, u64);

/// The file at `path` now, not following a link. Does not open it.
pub fn file_id(path: &Path) -> io::Result<FileId> {
    fs::symlink_metadata(path).map(|m| (m.dev(), m.ino()))
}

/// A file told from every other that is or was at its path, while it is not open: its [`FileId`] and when it
/// was created (nanoseconds since the epoch, where the file system keeps it). Once a file is removed, the
/// next one created may be given its inode number (seen on ext4 within seconds); only an open descriptor
/// keeps the number from being given again, which is why a running owner needs only the [`FileId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    pub id: FileId,
    pub born_ns: Option<u64>,
}

impl FileStamp {
    /// The stamp of the file `meta` was read from (not following a link).
    pub fn of(meta: &fs::Metadata) -> FileStamp {
        let born = meta
            .created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        FileStamp {
            id: (meta.dev(), meta.ino()),
            born_ns: born.map(|d| d.as_nanos() as u64),
        }
    }

    /// The stamp of the file at `path` now, not following a link.
    pub fn at(path: &Path) -> io::Result<FileStamp> {
        fs::symlink_metadata(path).map(|m| FileStamp::of(&m))
    }
}

/// `path` made absolute against the working directory now (as given if that fails), links not resolved:
/// what an owner that may change its working directory later (a daemon detaching to /) looks at.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `path` as what it names, however it is spelled (`.` in it, `x/..`, a link): its canonical path, or its
/// [`absolute`] path where it is not there yet.
pub fn resolved(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| absolute(path))
}

/// The path to give SQLite for the database at `path` when it opens it with `SQLITE_OPEN_NOFOLLOW`: the
/// folders above the file resolved (the nearest that exists canonicalized, the rest as named), the file's
/// own name as given. SQLite's unix VFS counts every link met anywhere in a path and `SQLITE_OPEN_NOFOLLOW`
/// then refuses the open (`unixFullPathname` answering `SQLITE_OK_SYMLINK`,
/// <https://sqlite.org/c3ref/c_open_autoproxy.html>), so a data directory below a linked folder
/// (`~/.local/share` linked to another disk, macOS's `/tmp` and `/var`) was "unable to open database file"
/// for every open. A link in the file's own place is still refused, by SQLite and by [`open_private`].
pub fn sqlite_path(path: &Path) -> PathBuf {
    let Some(name) = path.file_name() else {
        return path.to_path_buf();
    };
    let mut missing = Vec::new();
    let mut folder = parent_dir(path);
    loop {
        if let Ok(real) = fs::canonicalize(folder) {
            return missing.iter().rev().fold(real, |p, m| p.join(m)).join(name);
        }
        // A folder not made yet (a pool built before its directory): its name as given, below the
        // nearest one that is there. `..` or the root: nothing to resolve.
        match (folder.file_name(), folder.parent()) {
            (Some(last), Some(up)) => {
                missing.push(last);
                folder = if up.as_os_str().is_empty() { Path::new(".") } else { up };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The longest path, in bytes, by which SQLite's unix VFS opens a database: its `MAX_PATHNAME` (512) less the 8
/// of `-journal`, whose name it must be able to make ("the journal path required by the database being
/// opened will be more than pVfs->mxPathname bytes", pager.c's `sqlite3PagerOpen`). A longer one is "unable
/// to open database file", whatever the file.
pub const SQLITE_MAX_DB_PATH: usize = 504;

/// The most the stores add below a data directory's path to name a database they open
/// (`backups/pre-migration/.activity-<time>-<pid>.partial` is 70).
pub const DATA_DIR_NAMES_MAX: usize = 100;

/// Refuses the database `path` when the path SQLite would be given for it ([`sqlite_path`]) is longer than
/// SQLite opens ([`SQLITE_MAX_DB_PATH`]): [`Error::PathTooLong`], before anything is created. Such a data
/// directory was "unable to open database file" at its owner's first start, an empty file left behind, and
/// doctor said nothing of why.
pub fn check_sqlite_path(path: &Path) -> Result<()> {
    let bytes = sqlite_path(path).as_os_str().len();
    match bytes > SQLITE_MAX_DB_PATH {
        true => Err(Error::PathTooLong {
            path: path.to_path_buf(),
            bytes,
        }),
        false => Ok(()),
    }
}

/// The file an open descriptor refers to.
pub fn file_id_of(file: &File) -> io::Result<FileId> {
    file.metadata().map(|m| (m.dev(), m.ino()))
}

/// Mode of every file the stores create: the database, its sidecars, backups, records and lock files.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the directories the stores create.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Creates the data directory `dir` of an owner or a restore (and missing parents) as
/// [`create_private_dir_all`] does, after [`refuse_sudo_into_users_folder`]: one made by root there would
/// belong to root.
pub fn create_data_dir(dir: &Path) -> Result<()> {
    refuse_sudo_into_users_folder(dir)?;
    create_private_dir_all(dir)
}

/// Creates `dir` (and missing parents) with mode 0700. An existing directory is left as it is; an existing
/// file in its place is an error that says so.
pub fn create_private_dir_all(dir: &Path) -> Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    // Created first, looked at after a failure: looked at first, a folder another process made between the
    // look and the creation (four backups starting together into a new folder) was "a directory, not a
    // directory". `create_dir_all` takes a folder made meanwhile as made.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
        .map_err(|e| match fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => not_a_directory(dir, &meta),
            _ => Error::io(dir, "create the directory", e),
        })
}

/// sha256 of everything `file` holds, read from its start (positioned reads: the descriptor's offset is
/// not used, so nothing else about it changes), as lowercase hexadecimal.
pub fn sha256_of(file: &File) -> io::Result<String> {
    sha256_of_while(file, || Ok::<(), std::convert::Infallible>(())).unwrap_or_else(|never| match never {})
}

/// [`sha256_of`], asking `go_on` before each mebibyte it reads: its error ends the read, returned as the
/// outer error (a caller asked to stop gives up within a mebibyte, not at the end of a file of gigabytes);
/// the inner result is the read's.
pub fn sha256_of_while<E>(
    file: &File,
    go_on: impl Fn() -> std::result::Result<(), E>,
) -> std::result::Result<io::Result<String>, E> {
    use sha2::Digest;
    use std::os::unix::fs::FileExt;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        go_on()?;
        let n = match file.read_at(&mut buf, at) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        };
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(Ok(crate::schema::hex(&hasher.finalize())))
}

/// [`sha256_of`] the regular file at `path` (reading a FIFO would wait for a writer forever).
pub fn sha256_of_path(path: &Path) -> Result<String> {
    require_regular_file(path, "read")?;
    let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
    sha256_of(&file).map_err(|e| Error::io(path, "read", e))
}

/// The mode of the regular file at `path` (a link is not followed) when users other than its owner may read
/// or write it: any group or other permission bit, in a folder they may enter (a file in a `0700` folder is
/// out of their reach whatever its mode).
pub fn open_to_others(path: &Path) -> Option<u32> {
    let meta = fs::symlink_metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o7777;
    let folder = fs::metadata(parent_dir(path)).ok()?.permissions().mode();
    (meta.is_file() && mode & 0o077 != 0 && folder & 0o011 != 0).then_some(mode)
}

/// Refuses a directory that users other than its owner may write (mode `g+w` or `o+w`): anyone who can
/// write it can plant a link where a database, lock or backup is about to be created. The remedy says
/// `chmod 700`.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(|e| Error::io(dir, "read the metadata of", e))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::NotPrivate {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Refuses to write beside `paths` (those that exist: a database, its lock file, a backup folder) when one
/// belongs to another user than this process's. Every file the stores create is 0600 and belongs to its
/// creator: `sudo splitstore restore` on a user's data directory put root's files in place, which the
/// user's daemon could not open. Only files that are there count, so a process that always runs as one
/// user (root in a container, on a folder the host's user owns) still starts on a new directory.
pub fn check_same_owner(paths: &[&Path]) -> Result<()> {
    check_owned_by(paths, this_user())
}

/// Refuses root run through `sudo` (`SUDO_UID` names the user who ran it) on a folder of that user: `folder`,
/// or the nearest folder above it that exists, where the command would make its files. Only files that are
/// there count otherwise ([`check_same_owner`]: a process that always runs as root, in a container, starts on
/// a new directory of the host's user), so `sudo` on a user's empty or new data directory (a restore onto a
/// new machine, say) made root's 0600 files there, which the user's processes could not open.
pub fn refuse_sudo_into_users_folder(folder: &Path) -> Result<()> {
    let Some(sudo_user) = std::env::var("SUDO_UID").ok().and_then(|uid| uid.parse::<u32>().ok()) else {
        return Ok(());
    };
    let at = nearest_existing(folder);
    if this_user() == 0 && sudo_user != 0 && owner_of(at) == Some(sudo_user) {
        return Err(Error::AnotherUsersFiles {
            path: at.to_path_buf(),
            owner: sudo_user,
            user: 0,
            stray: false,
            left_beside: Vec::new(),
        });
    }
    Ok(())
}

/// The user this process writes as (its effective uid).
pub fn this_user() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `path` if it exists, else the nearest folder above it that does (where it would be created).
pub fn nearest_existing(path: &Path) -> &Path {
    let mut at = path;
    while fs::symlink_metadata(at).is_err() && at != parent_dir(at) {
        at = parent_dir(at);
    }
    at
}

/// [`check_same_owner`] for user `user`.
pub fn check_owned_by(paths: &[&Path], user: u32) -> Result<()> {
    for path in paths {
        // Missing, or not visible to this user: the write itself says so.
        let Ok(meta) = fs::symlink_metadata(path) else { continue };
        if meta.uid() != user {
            // In a folder of this user: the odd one out (left by a command run as root), given back to this
            // user. Never a folder to root: a user's data directory sits in root's `/var/lib` or `/tmp`, and
            // a backup as root of one never backed up said to give the whole directory to root.
            let stray = owner_of(parent_dir(path)) == Some(user) && (!meta.is_dir() || user != 0);
            return Err(Error::AnotherUsersFiles {
                path: path.to_path_buf(),
                owner: meta.uid(),
                user,
                stray,
                left_beside: match stray {
                    true => left_in_data_dir_beside(path, meta.uid()),
                    false => Vec::new(),
                },
            });
        }
    }
    Ok(())
}

/// Where `path`, another user's, was met inside a data directory (the folder holding a private folder), the
/// rest of user `owner`'s entries there ([`owned_by_in`]); none elsewhere: a data directory (or backup folder)
/// that is itself that user's sits in a folder of this user's own (its home) whose other entries are none of
/// ours.
pub(crate) fn left_in_data_dir_beside(path: &Path, owner: u32) -> Vec<PathBuf> {
    let folder = parent_dir(path);
    match fs::symlink_metadata(crate::private_dir::private_dir(folder)).is_ok() {
        true => owned_by_in(owner, folder, path),
        false => Vec::new(),
    }
}

/// The entries of `folder` but `except` that belong to user `owner`, sorted: what a command run as that
/// user left beside a file it left, given back in one `chown` rather than one per run.
fn owned_by_in(owner: u32, folder: &Path, except: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.file_name() != except.file_name() && owner_of(p) == Some(owner))
        .collect();
    found.sort();
    found
}

/// After this user was refused access to `path`: the nearest of `path` and the folders above it that this
/// user can see, when it belongs to another user and the folder holding it to this user (a file or folder
/// left there by a command run as root: `sudo cp -r` of a data directory, a restore from a backup tool run
/// as root, with only the top folder given back), with that user. Such a refusal was said as "run as the
/// user that owns" the folder, which is this user: a remedy that could never work.
pub fn stray_of_another_user(path: &Path) -> Option<(PathBuf, u32)> {
    let user = this_user();
    let at = path
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_ok())?;
    let owner = owner_of(at)?;
    (owner != user && owner_of(parent_dir(at)) == Some(user)).then(|| (at.to_path_buf(), owner))
}

/// After this user was refused access to `path`: `path`, or else the folder holding it, when this user owns it
/// and its own mode is what shuts this user out (a folder made read-only with `chmod 555`, a file with
/// `chmod 000`), with the `chmod` mode that lets it in. "Run as the user that owns it" is then no remedy: that
/// user is this one.
pub fn shut_out_by_own_mode(path: &Path) -> Option<(PathBuf, &'static str)> {
    let user = this_user();
    [path.to_path_buf(), resolved_folder_of(path)]
        .into_iter()
        .find_map(|at| {
            let meta = fs::symlink_metadata(&at).ok().filter(|m| m.uid() == user)?;
            owner_mode_lacking(&meta).map(|mode| (at, mode))
        })
}

/// The folder holding `path` as what it names: a data directory given as a link (on another disk) is asked
/// about, and named, as the folder it links to, whose mode and attributes are what refuse.
pub fn resolved_folder_of(path: &Path) -> PathBuf {
    resolved(parent_dir(path))
}

/// Run as the superuser, which writes whatever the mode says (doctor under `sudo`, to look at a user's data
/// directory): the user owning `path` (a file, or a folder to make files in) when that is another user and
/// the file's own mode shuts that user out, with the `chmod` mode that lets it in. `None` for any other
/// process, which [`ensure_writable`] asks as itself, and where `path` is missing.
pub fn shuts_out_its_owner(path: &Path) -> Option<(u32, &'static str)> {
    if this_user() != 0 {
        return None;
    }
    let meta = fs::symlink_metadata(path).ok().filter(|m| m.uid() != 0)?;
    owner_mode_lacking(&meta).map(|mode| (meta.uid(), mode))
}

/// The `chmod` mode the owner of the file `meta` describes lacks to use it as the stores do: `u+rwx` for a
/// folder, `u+rw` for a file; `None` where its mode has it.
fn owner_mode_lacking(meta: &fs::Metadata) -> Option<&'static str> {
    let (needs, mode) = match meta.is_dir() {
        true => (0o700, "u+rwx"),
        false => (0o600, "u+rw"),
    };
    (meta.permissions().mode() & needs != needs).then_some(mode)
}

/// The owner of `path` (following no link), if it can be read.
pub fn owner_of(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path).ok().map(|m| m.uid())
}

/// Opens (creating if missing) a private read-write regular file without following a symbolic link, and
/// tightens its mode to 0600 through the descriptor if it was wider. A link, FIFO or other non-regular file
/// in its place is [`Error::UnsafePath`], and its target is not touched. Opens a descriptor: not for a
/// database this process has a connection to.
pub fn open_private(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, "open", e))?;
    regular_and_private(&file, path)?;
    Ok(file)
}

/// Creates a new private file; fails if anything (a link included) exists at `path`. Opens a descriptor
/// (see [`open_private`]).
pub fn create_private_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, "create", e))
}

/// If `path` exists, checks that it is a regular file (not a link, not a FIFO) and sets 0600 if its mode
/// is wider, through a descriptor opened without following links. Opens a descriptor (see [`open_private`]).
pub fn ensure_private(path: &Path) -> Result<()> {
    let file = match open_read_no_follow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, "open", e)),
    };
    regular_and_private(&file, path)
}

/// Checks that this process may write `path` (a file, or a folder to make files in), if it is there (its
/// effective user, as faccessat(2) with `AT_EACCESS` asks, and its attributes): SQLite opens a database,
/// `-wal` or `-shm` it may not write for reading only, without a word (os_unix.c's `unixOpen` falls back to
/// `O_RDONLY`; a `-shm` it makes takes the database's mode, so a database made read-only leaves a read-only
/// `-shm` behind), and an owner's first write then failed with "attempt to write a readonly database". A
/// mode that shuts this user out is [`Error::PermissionDenied`] (its remedy the `chmod`), as is an attribute
/// refusing every writer ([`write_refusing_attribute`]); a file system mounted read-only is
/// [`Error::ReadOnlyFileSystem`].
pub fn ensure_writable(path: &Path) -> Result<()> {
    // A folder is written by making files in it, which takes searching it too.
    let wanted = match fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        true => libc::W_OK | libc::X_OK,
        false => libc::R_OK | libc::W_OK,
    };
    if let Err(e) = accessible(path, wanted) {
        return match e.kind() {
            io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::io(path, "write", e)),
        };
    }
    // faccessat(2) tells an immutable file (EPERM), not an append-only one, which refuses every open for
    // writing but one that only appends (SQLite's is not).
    match write_refusing_attribute(path) {
        Some(_) => Err(Error::io(path, "write", io::Error::from_raw_os_error(libc::EPERM))),
        None => Ok(()),
    }
}

/// Whether this process may use `path` as `mode` (`libc::R_OK`, `W_OK`, `X_OK`) says, as faccessat(2) with
/// `AT_EACCESS` answers for its effective user, without opening it; the refusal is the operating system's
/// error (a path holding a NUL byte names no file: `NotFound`).
pub fn accessible(path: &Path, mode: libc::c_int) -> io::Result<()> {
    let Some(c_path) = c_path(path) else {
        return Err(io::ErrorKind::NotFound.into());
    };
    // SAFETY: faccessat(2) only reads the NUL-terminated path it is given.
    match unsafe { libc::faccessat(libc::AT_FDCWD, c_path.as_ptr(), mode, libc::AT_EACCESS) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `path` as the system calls take it, NUL-terminated; `None` for one holding a NUL byte.
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()
}

/// The attribute of `path` that refuses every writer, root included, as statx(2) tells it without opening
/// the file: `("immutable", 'i')` (`chattr +i`) or `("append-only", 'a')` (`chattr +a`), with the letter
/// `chattr` takes; `None` where neither is set or the file system does not say.
pub fn write_refusing_attribute(path: &Path) -> Option<(&'static str, char)> {
    let c_path = c_path(path)?;
    let mut stx = std::mem::MaybeUninit::<libc::statx>::uninit();
    // SAFETY: statx(2) reads the NUL-terminated path and writes only the struct it is given.
    if unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            stx.as_mut_ptr(),
        )
    } != 0
    {
        return None;
    }
    // SAFETY: statx returned 0, so it filled the struct.
    let stx = unsafe { stx.assume_init() };
    let set = |attribute: libc::c_int| stx.stx_attributes_mask & stx.stx_attributes & attribute as u64 != 0;
    if set(libc::STATX_ATTR_IMMUTABLE) {
        Some(("immutable", 'i'))
    } else if set(libc::STATX_ATTR_APPEND) {
        Some(("append-only", 'a'))
    } else {
        None
    }
}

/// Refuses, before anything is made there, a command that must rename or remove what it makes in `folder`
/// (a copy made under a temporary name and renamed into place, a file moved aside, a journal removed) where
/// an attribute forbids it: an append-only folder lets the copy be made in full, then refuses its rename and
/// its removal, so it would be left behind, with an error that names something else; an immutable one
/// refuses the copy. `Ok` for a folder not made yet (made without either) or a file system that does not say.
/// A folder given as a link (a data directory or `backup --to` folder on another disk) is asked, and named,
/// as the folder it links to.
pub fn ensure_entries_can_move(folder: &Path) -> Result<()> {
    let folder = resolved(folder);
    match write_refusing_attribute(&folder) {
        Some(_) => Err(Error::PermissionDenied {
            path: folder,
            action: "rename or remove files in",
        }),
        None => Ok(()),
    }
}

/// Opens an existing private file for reading (to fsync it, say) without following a symbolic link,
/// checked as [`ensure_private`] checks it. Opens a descriptor (see [`open_private`]).
pub fn open_private_existing(path: &Path) -> Result<File> {
    let file = open_read_no_follow(path).map_err(|e| Error::io(path, "open", e))?;
    regular_and_private(&file, path)?;
    Ok(file)
}

fn open_read_no_follow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Checks that `path` is a regular file without opening it (a FIFO would block a reader): what a command
/// given a file by its user (a backup to restore, a legacy file) reads. Links are followed: the user named
/// the file.
pub fn require_regular_file(path: &Path, action: &'static str) -> Result<()> {
    regular(path, fs::metadata(path).map_err(|e| Error::io(path, action, e))?)
}

/// Whether `path` is a regular file (not followed through a link) with at least one byte: the only kind a
/// best-effort reader may open. SQLite deletes a `-wal` it finds beside an empty database file, even from a
/// read-only connection (hazards: "Corruption and bad files"), and that `-wal` may be all that is left.
pub fn nonempty_regular(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0)
}

/// The 16 bytes every plaintext SQLite database starts with (<https://sqlite.org/fileformat.html>, 1.3); an
/// encrypted one starts with its salt instead.
pub const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Whether the file at `path`, `len` bytes long, may be an encrypted database: it does not start with
/// [`SQLITE_HEADER`] (an encrypted one starts with its salt) and is whole pages, a page being 512 to 65536
/// bytes, a power of two (<https://sqlite.org/fileformat.html>, 1.3.2). SQLCipher encrypts page by page and
/// keeps the page size (<https://www.zetetic.net/sqlcipher/design/>): a file of another length (a text file,
/// an empty one, a copy cut short mid-page) is no whole database, encrypted or not.
pub fn may_be_encrypted(path: &Path, len: u64) -> bool {
    let mut first = [0u8; 16];
    len >= 512
        && len.is_multiple_of(512)
        && fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut first))
            .is_ok()
        && &first != SQLITE_HEADER
}

/// Refuses `path` unless it is a regular file, without following a link or opening it: a database given
/// by its place in the data directory (a link there was planted, a FIFO would block the first read).
pub fn ensure_regular(path: &Path) -> Result<()> {
    regular(
        path,
        fs::symlink_metadata(path).map_err(|e| Error::io(path, "read the metadata of", e))?,
    )
}

/// `path`, whose metadata is `meta`, is where a directory belongs.
pub(crate) fn not_a_directory(path: &Path, meta: &fs::Metadata) -> Error {
    Error::UnsafePath {
        path: path.to_path_buf(),
        problem: format!("is {}, not a directory", describe_type(meta)),
    }
}

pub(crate) fn regular(path: &Path, meta: fs::Metadata) -> Result<()> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(Error::UnsafePath {
            path: path.to_path_buf(),
            problem: format!("is {}, not a regular file", describe_type(&meta)),
        })
    }
}

/// The opened file is a regular file, and private.
fn regular_and_private(file: &File, path: &Path) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| Error::io(path, "read the metadata of", e))?;
    regular(path, meta.clone())?;
    if meta.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
            .map_err(|e| Error::io(path, "restrict the mode of", e))?;
    }
    Ok(())
}

fn describe_type(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a regular file"
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

/// Writes `value` as JSON to a new private file at `path`, atomically: a temporary name beside it, fsync,
/// rename over `path`, fsync of the directory. A reader sees the old content or the new, never a part. A
/// value that does not serialise is an error naming `path` (`action`), never an empty file: an empty record
/// or journal reads as none.
pub fn write_json_atomically(path: &Path, value: &impl serde::Serialize, action: &'static str) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::io(path, action, io::Error::new(io::ErrorKind::InvalidData, e)))?;
    ensure_entries_can_move(parent_dir(path))?;
    let temp = with_suffix(path, &format!(".tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temp);
    let mut file = create_private_new(&temp)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&temp, "write", e))?;
    drop(file);
    rename_durably(&temp, path)?;
    remove_temps_of_the_dead(path);
    Ok(())
}

/// Removes the temporary files [`write_json_atomically`] left beside `path` in processes killed before
/// their rename (`<name>.tmp-<pid>`, that pid gone): nothing else would, and doctor and cleanup list
/// neither. Best effort; one of a process still running is its own, left alone.
fn remove_temps_of_the_dead(path: &Path) {
    let Some(prefix) = path.file_name().map(|n| format!("{}.tmp-", n.to_string_lossy())) else {
        return;
    };
    let Ok(entries) = fs::read_dir(parent_dir(path)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| !crate::process::alive(pid)) {
            let _ = fs::remove_file(entry.path());
        }
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

/// Renames `from` to `to` (same directory) and fsyncs the directory. A rename never follows links. One
/// refused by an attribute of the file it would replace (`chattr +i`) names that file.
pub fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| match write_refusing_attribute(to) {
        Some(_) => Error::io(to, "replace", e),
        None => Error::io(from, "rename", e),
    })?;
    sync_dir(parent_dir(to))
}

/// What SQLite appends to a database's name for the files it keeps beside it.
pub const SIDECAR_SUFFIXES: [&str; 3] = ["-wal", "-shm", "-journal"];

/// The file name `name` is a sidecar of (`x.db` for `x.db-wal`), or `name` itself.
pub fn sidecar_base(name: &str) -> &str {
    SIDECAR_SUFFIXES
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// The sidecar files SQLite keeps beside a database.
pub fn sidecars(db: &Path) -> [PathBuf; 3] {
    SIDECAR_SUFFIXES.map(|suffix| with_suffix(db, suffix))
}

/// `path` with `suffix` appended to its file name (`events.db` + `.lock` = `events.db.lock`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `path` as it should be typed in a shell: as is when it holds only safe characters, single-quoted
/// otherwise, so a remedy's command can be copied and pasted even for a data directory with spaces. A path
/// that is not UTF-8 (a name in Latin-1, from an old disk) or holds a control character (a newline) is
/// written as `"$(printf '...')"` with those bytes in octal, which every POSIX shell (and bash, zsh, fish)
/// turns back into the very bytes: shown as text, U+FFFD stood for them, and the command, pasted, named
/// another directory (`splitstore server` then started anew there, beside the user's data). Command
/// substitution drops trailing newlines, so a name ending in one is named without it.
pub fn shell_quoted(path: &Path) -> String {
    let bytes = path.as_os_str().as_encoded_bytes();
    // A relative path starting with `-` would be read as an option.
    let dash = if bytes.starts_with(b"-") { "./" } else { "" };
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => {
            let text = format!("{dash}{text}");
            let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
            if !text.is_empty() && text.chars().all(safe) {
                text
            } else {
                format!("'{}'", text.replace('\'', "'\\''"))
            }
        }
        _ => {
            let mut format = String::from(dash);
            let octal = |format: &mut String, bytes: &[u8]| {
                for b in bytes {
                    format.push_str(&format!("\\{b:03o}"));
                }
            };
            for chunk in bytes.utf8_chunks() {
                for c in chunk.valid().chars() {
                    match c {
                        '\\' => format.push_str("\\\\"),
                        '%' => format.push_str("%%"),
                        '\'' => format.push_str("'\\''"),
                        c if c.is_control() => octal(&mut format, c.to_string().as_bytes()),
                        c => format.push(c),
                    }
                }
                octal(&mut format, chunk.invalid());
            }
            format!("\"$(printf '{format}')\"")
        }
    }
}

/// A compact UTC timestamp for file names, sortable as text: `20261121T235614.123Z`.
pub fn name_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// Moves a database and its sidecars aside as `<name>.<tag>-<time>` (never deletes). Returns the new
/// path of the database, or `None` if there was nothing to move. The database must not be open.
pub fn move_aside(db: &Path, tag: &str) -> Result<Option<PathBuf>> {
    if !exists_with_sidecars(db) {
        return Ok(None);
    }
    let target = aside_path(db, tag);
    move_with_sidecars(db, &target)?;
    Ok(Some(target))
}

/// Whether the database or any of its sidecars exists.
pub fn exists_with_sidecars(db: &Path) -> bool {
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    exists(db) || sidecars(db).iter().any(|p| exists(p))
}

/// A free name `<name>.<tag>-<time>[-n]` beside `db` to move it aside to (neither it nor its sidecars exist).
pub fn aside_path(db: &Path, tag: &str) -> PathBuf {
    let stamp = name_timestamp(Utc::now());
    let mut target = with_suffix(db, &format!(".{tag}-{stamp}"));
    let mut n = 1;
    while exists_with_sidecars(&target) {
        target = with_suffix(db, &format!(".{tag}-{stamp}-{n}"));
        n += 1;
    }
    target
}

/// Renames a database and its sidecars to `to` (same directory), the database last, then fsyncs the
/// directory. A database without its -wal would lose committed rows, so the pair always moves together.
pub fn move_with_sidecars(from: &Path, to: &Path) -> Result<()> {
    move_sidecars(from, to)?;
    if fs::symlink_metadata(from).is_ok() {
        fs::rename(from, to).map_err(|e| Error::io(from, "move aside", e))?;
    }
    sync_dir(parent_dir(from))
}

/// Moves the sidecars of `db` aside as `<name>.<tag>-<time>-wal` (and `-shm`), leaving `db` where it is:
/// they were another file's ([`crate::records::orphan_wal`]). Returns the name they now hang off (no file
/// by that name exists). `db` must not be open.
pub fn move_sidecars_aside(db: &Path, tag: &str) -> Result<PathBuf> {
    let target = aside_path(db, tag);
    move_sidecars(db, &target)?;
    sync_dir(parent_dir(db))?;
    Ok(target)
}

/// Renames the `-wal` and `-shm` of `from` to those of `to`, leaving `from` itself where it is: the first half
/// of [`move_with_sidecars`], for a caller that marks the step between the two.
pub(crate) fn move_sidecars(from: &Path, to: &Path) -> Result<()> {
    for (side_from, side_to) in sidecars(from).iter().zip(sidecars(to).iter()) {
        if fs::symlink_metadata(side_from).is_ok() {
            fs::rename(side_from, side_to).map_err(|e| Error::io(side_from, "move aside", e))?;
        }
    }
    Ok(())
}

/// Removes a database file of our own (a temporary copy) with its sidecars; a missing one is fine.
pub fn remove_with_sidecars(db: &Path) -> Result<()> {
    for p in std::iter::once(db.to_path_buf()).chain(sidecars(db)) {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, "remove", e)),
        }
    }
    Ok(())
}

/// Removes a temporary database of our own (a conversion's or a salvage's output that is not kept) with its
/// sidecars and the lock file its construction used. Best effort: what remains is a leftover the next run
/// (or `cleanup`) removes.
pub fn discard_temporary_database(db: &Path) {
    let _ = remove_with_sidecars(db);
    let _ = fs::remove_file(with_suffix(db, ".lock"));
}

/// The folder where SQLite writes its temporary files (sorts that spill, statement journals) when temporary
/// storage is on disk: the first of `$SQLITE_TMPDIR`, `$TMPDIR`, `/var/tmp`, `/usr/tmp`, `/tmp` and `.` that
/// is a folder this process may write, as SQLite's unix VFS picks it (`unixTempFileDir` in os_unix.c;
/// <https://sqlite.org/tempfiles.html>). splitstore never sets `sqlite3_temp_directory`, which would come first.
pub fn sqlite_temp_dir() -> Option<PathBuf> {
    sqlite_temp_dir_with(|name| std::env::var_os(name))
}

/// [`sqlite_temp_dir`] with the environment read through `env`.
fn sqlite_temp_dir_with(env: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let from_env = ["SQLITE_TMPDIR", "TMPDIR"].into_iter().filter_map(env);
    let fixed = ["/var/tmp", "/usr/tmp", "/tmp", "."]
        .into_iter()
        .map(std::ffi::OsString::from);
    from_env.chain(fixed).map(PathBuf::from).find(|dir| {
        use std::os::unix::ffi::OsStrExt;
        let writable = std::ffi::CString::new(dir.as_os_str().as_bytes())
            // SAFETY: access(2) reads a NUL-terminated path and nothing else.
            .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) } == 0);
        dir.is_dir() && writable
    })
}

/// Whether two paths lie on different file systems (devices); false when either cannot be read.
pub fn on_different_file_systems(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    matches!((fs::metadata(a), fs::metadata(b)), (Ok(a), Ok(b)) if a.dev() != b.dev())
}

/// Whether the file system holding `path` is mounted read-only (`statvfs`'s `ST_RDONLY`): a snapshot, a
/// backup disk, a recovery boot. False when it cannot be asked.
pub fn on_read_only_file_system(path: &Path) -> bool {
    statvfs(path).is_some_and(|stat| stat.f_flag & libc::ST_RDONLY != 0)
}

/// Whether the file system holding the file at `path` has no inode left for a new file beside it (a `-wal`, a
/// `-shm`) while a `-wal` or `-shm` of it is not there yet: SQLite then says only "unable to open database
/// file". False where it cannot be asked, and where the file system does not count inodes (btrfs says 0 of 0).
pub fn out_of_inodes(path: &Path) -> bool {
    opening_creates_sidecars(path)
        && statvfs(parent_dir(path)).is_some_and(|stat| stat.f_files > 0 && stat.f_favail == 0)
}

/// Whether the file system holding the file at `path` has no block left that this process may write (root
/// may write the blocks the file system keeps back for it): SQLite says a write it refused for want of room
/// as `SQLITE_FULL` only for the database and `-wal`; growing the `-shm` (at the first open after a clean
/// stop) fails as "disk I/O error" (`SQLITE_IOERR_SHMSIZE`). False where it cannot be asked.
pub fn out_of_space(path: &Path) -> bool {
    let root = this_user() == 0;
    statvfs(parent_dir(path)).is_some_and(|stat| if root { stat.f_bfree } else { stat.f_bavail } == 0)
}

/// Whether opening the database at `path` in WAL mode creates a file beside it: its `-wal` or `-shm` is not
/// there.
pub fn opening_creates_sidecars(path: &Path) -> bool {
    sidecars(path)[..2]
        .iter()
        .any(|sidecar| fs::symlink_metadata(sidecar).is_err())
}

/// statvfs(2) of `path`, or `None` where it cannot be asked.
fn statvfs(path: &Path) -> Option<libc::statvfs> {
    let c_path = c_path(path)?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs(2) reads the NUL-terminated path and writes only the struct it is given.
    if unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    Some(unsafe { stat.assume_init() })
}

/// The network file system `path` lies on, by name, as statfs(2) tells it (and, for a FUSE mount, the
/// program serving it, as `/proc/self/mountinfo` names it); `None` for a local one, or where it cannot be told
/// (another OS). SQLite's WAL needs every process using a database on one machine
/// (<https://sqlite.org/wal.html>: "WAL does not work over a network filesystem"), and a lock taken on one
/// machine may not be seen on another (<https://sqlite.org/howtocorrupt.html>, 2.1).
pub fn network_file_system(path: &Path) -> Option<&'static str> {
    let c_path = c_path(path)?;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: statfs(2) reads the NUL-terminated path and writes only the struct it is given.
    if unsafe { libc::statfs(c_path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::useless_conversion)] // `f_type`'s width differs between architectures
    let magic = i64::from(stat.f_type);
    if magic == FUSE_MAGIC {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        return network_fuse_named(fuse_subtype(&mountinfo, &path.canonicalize().ok()?)?);
    }
    network_file_system_named(magic)
}

/// statfs(2)'s `f_type` of every FUSE mount, whatever program serves it.
const FUSE_MAGIC: i64 = 0x6573_5546;

/// The program serving the FUSE mount `path` (canonical) lies on, as `/proc/self/mountinfo` (`mountinfo`)
/// names it: the subtype of its file system type `fuse.<subtype>` (proc(5)). `None` when the mount names none.
fn fuse_subtype<'a>(mountinfo: &'a str, path: &Path) -> Option<&'a str> {
    mount_holding(mountinfo, path)?.1.strip_prefix("fuse.")
}

/// The innermost mount holding `path` (canonical) in `mountinfo` (`/proc/self/mountinfo`): its mount point and
/// file system type (`ext4`, `fuse.sshfs`); the last one listed, of mounts stacked on one point.
fn mount_holding<'a>(mountinfo: &'a str, path: &Path) -> Option<(PathBuf, &'a str)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `36 35 98:0 /root /mount/point options [optional fields] - type source super-options`
            let (mount, kind) = line.split_once(" - ")?;
            let point = unescape_mountinfo(mount.split(' ').nth(4)?);
            path.starts_with(&point).then_some((point, kind.split(' ').next()?))
        })
        .max_by_key(|(point, _)| point.as_os_str().len())
}

/// The mount point of the file system `path` lies on (Linux, `/proc/self/mountinfo`), `None` where it cannot be
/// told.
pub fn mount_point(path: &Path) -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    Some(mount_holding(&mountinfo, &path.canonicalize().ok()?)?.0)
}

/// A mount point as mountinfo writes it: space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mountinfo(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The FUSE programs that serve a file system from another machine, by the subtype their mounts have. Others
/// (ntfs-3g, an encrypted folder, an archive) serve a local disk.
fn network_fuse_named(subtype: &str) -> Option<&'static str> {
    Some(match subtype {
        "sshfs" => "sshfs (SFTP)",
        "rclone" => "rclone",
        "s3fs" | "goofys" | "mountpoint-s3" => "S3 (FUSE)",
        "gcsfuse" => "Cloud Storage (gcsfuse)",
        "curlftpfs" => "FTP (curlftpfs)",
        "smbnetfs" => "SMB (smbnetfs)",
        "davfs" => "WebDAV (davfs2)",
        "glusterfs" => "GlusterFS",
        "ceph-fuse" => "Ceph (ceph-fuse)",
        "juicefs" => "JuiceFS",
        "vmhgfs-fuse" => "a VMware shared folder",
        _ => return None,
    })
}

/// The network file systems among statfs(2)'s `f_type` magic numbers (linux/magic.h), by name. FUSE is not
/// among them: it serves local disks too (NTFS through ntfs-3g, an encrypted folder); its mounts are told by
/// the program serving them ([`network_fuse_named`]).
fn network_file_system_named(magic: i64) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "NFS",
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => "SMB/CIFS",
        0x0102_1997 => "9p, a virtual machine's or WSL's shared folder",
        0x5346_414F | 0x6B41_4653 => "AFS",
        0x00C3_6400 => "Ceph",
        0x0BD0_0BD0 => "Lustre",
        0x7375_7245 => "Coda",
        0x564C => "NCP",
        0x786F_4256 => "a VirtualBox shared folder",
        _ => return None,
    })
}

/// A `file:` URI for `path` with `query` (`mode=ro`, ...): every byte outside the unreserved set is
/// percent-encoded, since `?`, `#` and `%` in a path mean something in a URI (<https://sqlite.org/uri.html>).
pub fn file_uri(path: &Path, query: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

#[cfg(test)]
mod tests {
    use proptest::prelude::Strategy;

    use super::{
        fuse_subtype, network_file_system, network_file_system_named, network_fuse_named, sha256_of, sha256_of_while,
        shell_quoted, sqlite_path, sqlite_temp_dir_with, write_json_atomically,
    };
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    /// Processes creating one new folder at once all find it made, whichever made it: one of four backups
    /// starting together into a new backup folder failed with "backups is a directory, not a directory".
    #[test]
    fn a_folder_made_by_many_at_once_is_made_for_each() {
        let dir = tempfile::tempdir().unwrap();
        for round in 0..50 {
            let folder = dir.path().join(format!("{round}/backups"));
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        start.wait();
                        super::create_private_dir_all(&folder).unwrap();
                    });
                }
            });
            assert!(folder.is_dir());
        }
    }

    /// SQLite is given a path with no link above the file, however much of it exists yet, and the file's own
    /// name as given (a link there stays for SQLite and `O_NOFOLLOW` to refuse).
    #[test]
    fn sqlite_is_given_the_folders_above_a_database_resolved_and_its_own_name_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap().join("disk");
        std::fs::create_dir(&real).unwrap();
        let share = dir.path().join("share");
        std::os::unix::fs::symlink(&real, &share).unwrap();
        assert_eq!(sqlite_path(&share.join("a.db")), real.join("a.db"));
        assert_eq!(sqlite_path(&share.join("not/yet/a.db")), real.join("not/yet/a.db"));
        std::os::unix::fs::symlink(real.join("elsewhere.db"), real.join("linked.db")).unwrap();
        assert_eq!(sqlite_path(&share.join("linked.db")), real.join("linked.db"));
        let relative = Path::new("a.db");
        assert_eq!(
            sqlite_path(relative),
            std::env::current_dir().unwrap().canonicalize().unwrap().join("a.db")
        );
        assert_eq!(sqlite_path(Path::new("/")), Path::new("/"));
    }

    /// A network file system is told by statfs's magic number, a local one never: a warning at every start of
    /// an owner on a local disk (9p and tmpfs differ in one digit) would teach its user to ignore it. FUSE
    /// counts as local (it serves local NTFS disks and encrypted folders too).
    #[test]
    fn network_file_systems_are_told_by_their_magic_number_and_local_ones_never() {
        for (magic, name) in [
            (0x6969, "NFS"),
            (0x517B, "SMB/CIFS"),
            (0xFF53_4D42, "SMB/CIFS"),
            (0xFE53_4D42, "SMB/CIFS"),
            (0x0102_1997, "9p, a virtual machine's or WSL's shared folder"),
        ] {
            assert_eq!(network_file_system_named(magic), Some(name), "{magic:#x}");
        }
        // ext2-4, tmpfs, overlay, btrfs, xfs, FUSE.
        for local in [0xEF53, 0x0102_1994, 0x794C_7630, 0x9123_683E, 0x5846_5342, 0x6573_5546] {
            assert_eq!(network_file_system_named(local), None, "{local:#x}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            network_file_system(dir.path()),
            None,
            "a temporary folder on a local disk"
        );
    }

    /// A FUSE mount is told network or local by the program serving it, as mountinfo names it, for the
    /// innermost mount holding the path (a mount point with a space in it escaped): sshfs is a network file
    /// system (SQLite's WAL over it corrupts like over NFS), an encrypted folder or NTFS disk (`fuseblk`)
    /// served by FUSE is not. No FUSE mount can be made here: the mountinfo is written out.
    #[test]
    fn a_fuse_mount_is_told_network_by_the_program_serving_it() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:38 / /home/ana/remote rw,nosuid,nodev,relatime shared:20 - fuse.sshfs ana@host:/srv rw,user_id=1000
41 40 0:39 / /home/ana/remote/inner rw,relatime shared:21 - ext4 /dev/sdb1 rw
42 22 0:40 / /home/ana/My\\040Vault rw,relatime shared:22 - fuse.gocryptfs /home/ana/.vault rw
43 22 0:41 / /home/ana/My\\040Drive rw,relatime shared:23 - fuse.rclone drive: rw
44 22 8:17 / /media/ana/Windows rw,relatime shared:24 - fuseblk /dev/sdc1 rw
";
        let told = |path: &str| fuse_subtype(mountinfo, Path::new(path)).and_then(network_fuse_named);
        assert_eq!(told("/home/ana/remote/data/activity.db"), Some("sshfs (SFTP)"));
        assert_eq!(told("/home/ana/remote"), Some("sshfs (SFTP)"));
        assert_eq!(told("/home/ana/remote/inner/data"), None, "a local disk mounted inside");
        assert_eq!(
            told("/home/ana/remote-copy/data"),
            None,
            "a name that only begins alike"
        );
        assert_eq!(told("/home/ana/My Drive/data"), Some("rclone"));
        assert_eq!(told("/home/ana/My Vault/data"), None, "an encrypted folder");
        assert_eq!(told("/media/ana/Windows/data"), None, "NTFS through FUSE");
        assert_eq!(told("/home/ana/data"), None);
    }

    /// A digest asked to stop ends within a mebibyte of where it was, with the asker's error: a split asked to
    /// stop read its legacy file's sha256 to the end (about a second per gigabyte) before it stopped.
    #[test]
    fn a_digest_asked_to_stop_ends_within_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("five-mib");
        std::fs::write(&path, vec![7u8; 5 << 20]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let asked = std::cell::Cell::new(0);
        let stopped = sha256_of_while(&file, || {
            asked.set(asked.get() + 1);
            if asked.get() > 2 { Err("stop") } else { Ok(()) }
        });
        assert!(matches!(stopped, Err("stop")), "{stopped:?}");
        assert_eq!(asked.get(), 3, "two mebibytes read, then asked once more");
        let whole = sha256_of_while(&file, || Ok::<(), &str>(())).unwrap().unwrap();
        assert_eq!(whole, sha256_of(&file).unwrap());
        assert_eq!(
            whole,
            "e2925fdd17c83c77e9a4f957fd170b2a72b48ac55968943dcf962f2b853c88a9"
        );
    }

    /// A record written over one whose writer was killed before its rename leaves no `.tmp-<pid>` of the
    /// dead behind (they stayed forever, listed by nothing); a running process's is its own, kept.
    #[test]
    fn a_record_written_removes_the_temporary_files_of_killed_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("converted.json");
        let dead = dir.path().join("converted.json.tmp-999999999");
        // SAFETY: getppid has no preconditions; the parent of this test runs while it does.
        let running = dir
            .path()
            .join(format!("converted.json.tmp-{}", unsafe { libc::getppid() }));
        let other = dir.path().join("counters.json.tmp-999999999");
        for p in [&dead, &running, &other] {
            std::fs::write(p, b"{").unwrap();
        }
        write_json_atomically(&record, &serde_json::json!({"a": 1}), "write").unwrap();
        assert!(!dead.exists(), "the killed writer's");
        assert!(
            running.exists() && other.exists(),
            "a running writer's, and another record's"
        );
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "{\n  \"a\": 1\n}");
    }

    #[test]
    fn paths_are_quoted_for_a_shell_only_when_needed() {
        assert_eq!(shell_quoted(Path::new("/home/a/data-1")), "/home/a/data-1");
        assert_eq!(shell_quoted(Path::new("/home/a/my data")), "'/home/a/my data'");
        assert_eq!(shell_quoted(Path::new("/it's")), "'/it'\\''s'");
        assert_eq!(shell_quoted(Path::new("-data")), "./-data");
        assert_eq!(shell_quoted(Path::new("-my data")), "'./-my data'");
        use std::os::unix::ffi::OsStrExt;
        let latin1 = Path::new(std::ffi::OsStr::from_bytes(b"/home/a/caf\xe9 data"));
        assert_eq!(shell_quoted(latin1), "\"$(printf '/home/a/caf\\351 data')\"");
    }

    /// What a shell makes of a quoted path is the path, byte for byte, in `sh` (dash here, POSIX) and bash:
    /// names not UTF-8, with control characters, quotes, `%` and `\` (which printf would read), a leading dash.
    #[test]
    fn a_quoted_path_is_read_back_by_a_shell_as_the_same_bytes() {
        let names: [&[u8]; 8] = [
            b"/home/a/caf\xe9 data",
            b"/tmp/\xff\xfe%s\\n'it's'",
            b"/tmp/line\nbreak\ttab\x7f",
            b"-caf\xe9",
            b"/tmp/caf\xc3\xa9 ok/\xe9\x31\x32",
            b"/tmp/\xe2\x80\xa8sep\xc2\x85",
            b"/tmp/my data",
            b"/tmp/plain",
        ];
        for shell in ["sh", "bash"] {
            for name in names {
                let (quoted, out, expected) = read_back(shell, name);
                assert!(out.status.success(), "{shell}: {quoted}: {out:?}");
                assert_eq!(out.stdout, expected, "{shell}: {quoted}");
            }
        }
    }

    /// What `shell` prints of the path `name` as [`shell_quoted`] writes it: the quoted text, the run, and the
    /// bytes it should print (the path, `./` before a leading dash).
    fn read_back(shell: &str, name: &[u8]) -> (String, std::process::Output, Vec<u8>) {
        use std::os::unix::ffi::OsStrExt;
        let quoted = shell_quoted(Path::new(std::ffi::OsStr::from_bytes(name)));
        let out = std::process::Command::new(shell)
            .args(["-c", &format!("printf '%s' {quoted}")])
            .output()
            .unwrap();
        let expected = match name.starts_with(b"-") {
            true => [b"./", name].concat(),
            false => name.to_vec(),
        };
        (quoted, out, expected)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]
        /// Any name (any bytes but NUL, which no path holds, and a trailing newline, which command
        /// substitution drops: said in [`shell_quoted`]'s doc) is read back by `sh` as those very bytes.
        #[test]
        fn any_quoted_path_is_read_back_by_sh_as_the_same_bytes(
            name in proptest::collection::vec(1u8..=255, 1..24)
                .prop_filter("no trailing newline", |n| n.last() != Some(&b'\n'))
        ) {
            let (quoted, out, expected) = read_back("sh", &name);
            proptest::prop_assert!(out.status.success(), "{quoted}: {out:?}");
            proptest::prop_assert_eq!(out.stdout, expected, "{}", quoted);
        }
    }

    #[test]
    fn sqlite_temp_dir_is_the_first_writable_folder_of_sqlites_list() {
        let dir = tempfile::tempdir().unwrap();
        let (set, other) = (dir.path().join("sqlite"), dir.path().join("tmpdir"));
        std::fs::create_dir(&set).unwrap();
        std::fs::create_dir(&other).unwrap();
        let env = |sqlite: &Path, tmpdir: &Path| {
            let (sqlite, tmpdir) = (sqlite.as_os_str().to_owned(), tmpdir.as_os_str().to_owned());
            move |name: &str| match name {
                "SQLITE_TMPDIR" => Some(sqlite.clone()),
                "TMPDIR" => Some(tmpdir.clone()),
                _ => None,
            }
        };
        assert_eq!(sqlite_temp_dir_with(env(&set, &other)), Some(set.clone()));
        // A folder that does not exist, or a file, is passed over, as SQLite passes it over.
        let missing = dir.path().join("missing");
        assert_eq!(sqlite_temp_dir_with(env(&missing, &other)), Some(other.clone()));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        // Writable and executable: only its being a file rules it out.
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(sqlite_temp_dir_with(env(&file, &other)), Some(other));
        let fixed = ["/var/tmp", "/usr/tmp", "/tmp", "."].map(std::path::PathBuf::from);
        let found = sqlite_temp_dir_with(|_| None).unwrap();
        assert!(fixed.contains(&found), "{found:?}");
    }
}

/// Serde for paths a record or a report shows (`#[serde(with = "store_core::files::lossy_path")]`, and its
/// `option` and `vec` for `Option<PathBuf>` and `Vec<PathBuf>`): the path's text, bytes that are not UTF-8
/// replaced. serde's own `PathBuf` refuses such a path (a data directory under a home folder named in
/// Latin-1, say): a record then went unwritten, an empty one was written, or a `--json` report panicked
/// after the work was done. A path a record must give back exactly is stored as a name in a known directory
/// instead (the restore journal).
pub mod lossy_path {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&path.to_string_lossy())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        PathBuf::deserialize(deserializer)
    }

    /// For an `Option<PathBuf>`.
    pub mod option {
        use std::path::PathBuf;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(path: &Option<PathBuf>, serializer: S) -> Result<S::Ok, S::Error> {
            match path {
                Some(path) => serializer.serialize_some(&path.to_string_lossy()),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<PathBuf>, D::Error> {
            Option::<PathBuf>::deserialize(deserializer)
        }
    }

    /// For a `Vec<PathBuf>`.
    pub mod vec {
        use std::path::PathBuf;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(paths.iter().map(|p| p.to_string_lossy()))
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<PathBuf>, D::Error> {
            Vec::<PathBuf>::deserialize(deserializer)
        }
    }
}
