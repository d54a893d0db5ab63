//! Process liveness, for telling a live run's files from a killed run's leftovers, what a process runs,
//! whether it is stopped, which processes have a file open and the locks they hold on it.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::files::FileId;

/// Whether a process with this pid exists (signal 0 checks without sending anything). A process of another
/// user is alive too (`EPERM`).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        // 0 and negative pids name process groups, not one process.
        return false;
    }
    // SAFETY: kill with signal 0 performs only the existence and permission check.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// What the process `pid` runs, as an operator tells processes apart: its program's file name and, when the
/// first argument is a plain word (lowercase letters and dashes), that word (`splitstore repair`,
/// `splitstore server`), never the rest of its command line (paths, values, a token). `None` where `/proc` does not tell (another OS, a process gone).
pub fn command_of(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|b| *b == 0).map(String::from_utf8_lossy);
    let program = args.next()?;
    let program = program.rsplit('/').next().filter(|p| !p.is_empty())?.to_string();
    // A subcommand's shape only: lowercase letters and inner dashes. A token given as the first argument
    // (mixed case, digits, `_`) is never said.
    let plain = |a: &str| {
        !a.is_empty() && a.len() <= 24 && !a.starts_with('-') && a.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    };
    Some(match args.next() {
        Some(first) if plain(&first) => format!("{program} {first}"),
        _ => program,
    })
}

/// Whether the process `pid` is stopped: by SIGSTOP or a terminal's Ctrl-Z (state `T`), or by a debugger
/// (`t`, proc(5)). It keeps whatever it holds until it is continued. `false` where `/proc` does not tell
/// (another OS, a process gone, one of another pid namespace).
pub fn stopped(pid: u32) -> bool {
    state_of(pid).is_some_and(|state| state == "T" || state == "t")
}

/// The state proc(5) gives the process `pid` (`R`, `S`, `T`, `Z`, ...), where `/proc` tells.
pub(crate) fn state_of(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The program's name in parentheses may itself hold spaces and ')': the state follows the last ')'.
    let end = stat.rfind(')')?;
    stat[end + 1..].split_whitespace().next().map(str::to_string)
}

/// Keeps this process's memory out of core dumps: the soft limit of their size (`RLIMIT_CORE`) is set to
/// zero, for the process and the programs it starts. What a core dump holds is what the process held: the
/// database key, decrypted pages, settings values (tokens), window titles. The kernel writes it in the clear
/// (a `core` file in the working directory, where a shell or unit raised the limit), or hands it to the
/// system's crash collector (systemd-coredump, which honours the limit, keeps them on disk for `coredumpctl`;
/// bug reports attach them); a service manager's watchdog ends a hung process with `SIGABRT`, which dumps.
/// The hard limit is left as it is (a debugger may raise the soft one again). Not called by the library: a
/// process's limits are its program's; splitstore's commands and `migrate-split` call it first thing.
pub fn disable_core_dumps() -> std::io::Result<()> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit through a valid pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    limit.rlim_cur = 0;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// How an operator continues the stopped processes `pids` (space separated, as
/// [`crate::LockHolder::pids`] writes them), said beside [`end_stopped`].
pub fn continue_stopped(pids: &str) -> String {
    format!("`kill -CONT {pids}`, `fg` in the terminal that stopped it, or detach the debugger")
}

/// How an operator ends the stopped processes `pids`. A stopped process acts on no signal but SIGKILL until it
/// is continued (signal(7), "Stopping"): a plain `kill` stays pending, and the process goes on holding what
/// it holds, so the `kill` is followed by a `kill -CONT` that lets it act on it.
pub fn end_stopped(pids: &str) -> String {
    format!("`kill {pids} && kill -CONT {pids}`: stopped, a process acts on `kill` only once continued")
}

/// The other processes (this one left out) seen with any of the files `ids` open throughout
/// ([`seen_throughout`]), named as lock holders are: who to stop where every process using a file has to.
/// Empty where `/proc` does not tell; a process of another user is not seen ([`descriptors_on`]).
pub(crate) fn others_with_open(ids: &[FileId]) -> Vec<crate::LockHolder> {
    let pids = seen_throughout(|| {
        ids.iter()
            .flat_map(|id| descriptors_on(*id))
            .map(|(pid, _)| pid)
            .filter(|pid| *pid != std::process::id())
            .collect()
    });
    named(pids)
}

/// Another process (this one left out) with the file `id` open by another of its names than `path` (a hard
/// link), and that name, as its descriptor's link in `/proc/PID/fd` says it. `None` where `/proc` does not
/// tell; a process of another user is not seen ([`descriptors_on`]).
pub(crate) fn open_by_another_name(id: FileId, path: &Path) -> Option<(crate::LockHolder, PathBuf)> {
    let ours = std::fs::canonicalize(path).ok()?;
    descriptors_on(id)
        .into_iter()
        .filter(|(pid, _)| *pid != std::process::id())
        .find_map(|(pid, fdinfo)| {
            let fd = fdinfo.parent()?.parent()?.join("fd").join(fdinfo.file_name()?);
            let name = std::fs::read_link(fd).ok().filter(|name| *name != ours)?;
            Some((named(BTreeSet::from([pid])).pop()?, name))
        })
}

/// The pids `look` finds in three looks 20 ms apart, the first empty one ending it: what only passes by is
/// left out, a transaction that ends, or a child another thread forks, which holds copies of every
/// descriptor of its parent until it execs (a program's own test suite named those as holders).
pub(crate) fn seen_throughout(look: impl Fn() -> BTreeSet<u32>) -> BTreeSet<u32> {
    let mut seen = look();
    for _ in 0..2 {
        if seen.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = look();
        seen.retain(|pid| now.contains(pid));
    }
    seen
}

/// `pids` as lock holders, each with what it runs ([`command_of`]).
pub(crate) fn named(pids: BTreeSet<u32>) -> Vec<crate::LockHolder> {
    pids.into_iter()
        .map(|pid| crate::LockHolder {
            pid,
            since: None,
            command: command_of(pid),
            converting: false,
        })
        .collect()
}

/// The descriptors open on the file `id`, of every process this one may look into (this one included), as
/// `(pid, its /proc/PID/fdinfo/FD)`: where to ask which locks a process holds on the file ([`locks_through`]).
/// A process of another user is not seen (its descriptors are closed to this user).
pub(crate) fn descriptors_on(id: FileId) -> Vec<(u32, PathBuf)> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for pid in procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
    {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // Followed: the descriptor's link names the open file.
            if std::fs::metadata(fd.path()).is_ok_and(|m| (m.dev(), m.ino()) == id) {
                found.push((pid, PathBuf::from(format!("/proc/{pid}/fdinfo/")).join(fd.file_name())));
            }
        }
    }
    found
}

/// The locks held through one descriptor of the file `id` (its `/proc/PID/fdinfo/FD`, as
/// [`descriptors_on`] names it: `lock:` lines, as `/proc/locks` writes them). Unlike `/proc/locks`, which the
/// kernel hands out a page at a time, so that a line can be skipped when locks listed before it come and go
/// between two pages (a busy machine: SQLite takes and drops locks on every transaction), these are written
/// at once: a lock held throughout is always there. They name the pid that took the lock, which may have
/// handed its descriptor on and exited: the descriptor's process holds it now.
pub(crate) fn locks_through(fdinfo: &Path, id: FileId) -> Vec<ListedLock> {
    let file_id = proc_file_id(id);
    std::fs::read_to_string(fdinfo)
        .map(|info| {
            info.lines()
                .filter_map(|line| parse_lock(line.strip_prefix("lock:")?, &file_id))
                .collect()
        })
        .unwrap_or_default()
}

/// The processes among `descriptors` (as [`descriptors_on`] lists them for the file `id`) that hold, through
/// one of them, a lock `wanted` picks ([`locks_through`]): each once, in order.
pub(crate) fn holding(
    descriptors: &[(u32, PathBuf)],
    id: FileId,
    wanted: impl Fn(&ListedLock) -> bool,
) -> BTreeSet<u32> {
    descriptors
        .iter()
        .filter(|(_, fdinfo)| locks_through(fdinfo, id).iter().any(&wanted))
        .map(|(pid, _)| *pid)
        .collect()
}

/// One lock as the kernel lists it in `/proc/locks` (proc(5)): `1: POSIX ADVISORY READ 4808 fe:00:10133507 124
/// 124`, its class (`FLOCK`, `POSIX`, `OFDLCK`), whether it is shared (`READ`), the pid that took it, and the
/// bytes it covers (`EOF`: to the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedLock {
    pub class: String,
    pub shared: bool,
    pub pid: u32,
    pub first_byte: u64,
    pub last_byte: Option<u64>,
}

impl ListedLock {
    /// Whether the lock covers any byte of `bytes`.
    pub fn covers_any(&self, bytes: &std::ops::RangeInclusive<u64>) -> bool {
        self.first_byte <= *bytes.end() && self.last_byte.is_none_or(|last| last >= *bytes.start())
    }
}

/// The locks held on the file `id`, of every process, as `/proc/locks` lists them. A lock a process waits for
/// (`->`) holds nothing and is left out, as are pids of another namespace (listed as 0 or -1). Read a page
/// at a time, the list may skip a lock held throughout when others come and go ([`locks_through`] does not).
/// Empty where `/proc/locks` does not tell (another OS).
pub(crate) fn locks_on(id: FileId) -> Vec<ListedLock> {
    let file_id = proc_file_id(id);
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else {
        return Vec::new();
    };
    locks.lines().filter_map(|line| parse_lock(line, &file_id)).collect()
}

/// How `/proc/locks` names the file `id`: its device's major and minor in hex, and its inode.
fn proc_file_id((dev, ino): FileId) -> String {
    format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev))
}

/// One line of `/proc/locks` (`1: FLOCK ADVISORY WRITE 4808 fe:00:10133507 0 EOF`), if it is a lock held on
/// the file `file_id` by a process of this namespace.
fn parse_lock(line: &str, file_id: &str) -> Option<ListedLock> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [_, class, _, mode, pid, file, first, last] = fields.as_slice() else {
        return None;
    };
    if *file != file_id {
        return None;
    }
    Some(ListedLock {
        class: class.to_string(),
        shared: *mode == "READ",
        pid: pid.parse().ok().filter(|&pid| pid > 0)?,
        first_byte: first.parse().ok()?,
        last_byte: match *last {
            "EOF" => None,
            last => Some(last.parse().ok()?),
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_process_command_is_its_program_and_a_plain_first_word() {
        let seen = |program: &str, arg: &str, expected: &str| {
            let mut child = std::process::Command::new(program)
                .arg(arg)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Until the child has exec'd, /proc shows this test's command line.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let mut seen = super::command_of(child.id());
            while seen.as_deref() != Some(expected) && std::time::Instant::now() < deadline {
                std::thread::yield_now();
                seen = super::command_of(child.id());
            }
            child.kill().unwrap();
            child.wait().unwrap();
            seen
        };
        assert_eq!(
            seen("sleep", "infinity", "sleep infinity").as_deref(),
            Some("sleep infinity")
        );
        // A first argument shaped like a token, not a subcommand, is left out (`yes` runs until killed).
        assert_eq!(seen("yes", "sk_live_51AbCdEf", "yes").as_deref(), Some("yes"));
        assert_eq!(super::command_of(u32::MAX), None, "no such process");
    }

    /// A flock is found through the descriptor that holds it, in this process, and not through another
    /// descriptor of the same file (another open, which holds nothing); gone once unlocked. Only this
    /// process's descriptors are looked at: a child another test forks holds copies of them until it execs.
    #[test]
    fn a_lock_is_found_through_the_descriptor_that_holds_it() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("held.lock");
        let holder = std::fs::File::create(&path).unwrap();
        let other = std::fs::File::open(&path).unwrap();
        let meta = holder.metadata().unwrap();
        let id = (meta.dev(), meta.ino());
        let ours = || -> Vec<(u32, std::path::PathBuf)> {
            super::descriptors_on(id)
                .into_iter()
                .filter(|(pid, _)| *pid == std::process::id())
                .collect()
        };
        let flocks = || -> Vec<u32> {
            super::holding(&ours(), id, |l| l.class == "FLOCK")
                .into_iter()
                .collect()
        };
        assert_eq!(ours().len(), 2, "both descriptors seen");
        assert_eq!(flocks(), Vec::<u32>::new());
        fs2::FileExt::try_lock_exclusive(&holder).unwrap();
        assert_eq!(flocks(), [std::process::id()], "through the holder's descriptor alone");
        fs2::FileExt::unlock(&holder).unwrap();
        assert_eq!(flocks(), Vec::<u32>::new());
        drop(other);
    }

    #[test]
    fn a_process_stopped_by_sigstop_is_stopped_until_continued() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(!super::stopped(pid), "a running process");
        // SAFETY: signals to the child this test spawned.
        unsafe { libc::kill(pid as i32, libc::SIGSTOP) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !super::stopped(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let seen_stopped = super::stopped(pid);
        unsafe { libc::kill(pid as i32, libc::SIGCONT) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while super::stopped(pid) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let seen_continued = !super::stopped(pid);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen_stopped, "stopped after SIGSTOP");
        assert!(seen_continued, "running again after SIGCONT");
        assert!(!super::stopped(u32::MAX), "no such process");
    }
}
