//! Process liveness, for telling a live run's files from a killed run's leftovers.

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
