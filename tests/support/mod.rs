//! Shared by the root package's integration tests: child processes, kills, waiting, file modes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The `splitstore` binary built for these tests.
pub fn splitstore() -> Command {
    Command::new(env!("CARGO_BIN_EXE_splitstore"))
}

// Not every test binary uses every helper.
#[allow(unused_imports)]
pub use store_core::testing::{
    child_role, core_limit_at_exit, count_rows, file_mode as mode, kill9, output_within, query_column, query_i64,
    read_only, spawn_child, wait_for_file, wait_output_within, wait_until, wait_within,
};

/// Sends `sig` to `child`.
pub fn signal(child: &std::process::Child, sig: libc::c_int) {
    // SAFETY: kill(2) on a child this process spawned and has not reaped.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// A writer of activity.db at `db` at the schema before this build's (a daemon not upgraded yet), and that
/// version.
pub fn writer_at_older_schema(db: &Path) -> (activity_store::ActivityWriter, u32) {
    let older = activity_store::SCHEMA.end_version() - 1;
    let options = activity_store::WriterOptions {
        open: store_core::OpenOptions {
            target_version: Some(older),
            ..Default::default()
        },
        ..activity_store::WriterOptions::default()
    };
    (activity_store::ActivityWriter::open_with(db, &options).unwrap(), older)
}

/// The JSON of one database in doctor's output (`doctor --json`).
pub fn doctor_db_json<'a>(doctor: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doctor["databases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["database"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doctor}"))
}

/// The problems doctor reports for one database, as (code, message, remedy).
pub fn doctor_problems(doctor: &serde_json::Value, name: &str) -> Vec<(String, String, String)> {
    doctor_db_json(doctor, name)["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap().to_string();
            (s("code"), s("message"), s("remedy"))
        })
        .collect()
}

/// A marker file beside `path`: `activity.db` -> `activity.db.<tag>`.
pub fn marker(path: &Path, tag: &str) -> PathBuf {
    store_core::files::with_suffix(path, &format!(".{tag}"))
}

/// `splitstore <args>` started with stdout and stderr piped to the test.
pub fn spawn_splitstore<I, S>(args: I) -> std::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    splitstore()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn splitstore")
}

/// The lines of `pipe` (a child's stderr, taken from it), as they come: read on a thread of their own, so that a
/// test waits for a line with `recv_timeout` and never hangs on a child that says nothing. The receiver is
/// disconnected once the pipe closes (the child ended); join the thread to have every line.
pub fn lines_of(
    pipe: impl std::io::Read + Send + 'static,
) -> (std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    use std::io::BufRead;
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (lines, reader)
}

/// `splitstore <args>` run to completion within 60 s.
pub fn run_splitstore<I, S>(args: I) -> std::process::Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    output_within(splitstore().args(args), Duration::from_secs(60))
}

/// Stdout and stderr of a finished command, as text.
pub fn texts(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `splitstore report` says of project `id` in `data`: its name (`None` when config.db lacks it) and
/// status from `--json`, and its line of the table.
pub fn reported_project(data: &Path, id: i64) -> (Option<String>, String, String) {
    let json = run_splitstore(["report", "--data-dir", utf8(data), "--json"]);
    assert!(json.status.success(), "{json:?}");
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| r["project_id"].as_i64() == Some(id))
        .unwrap_or_else(|| panic!("no row for {id}: {rows:?}"));
    let table = texts(&run_splitstore(["report", "--data-dir", utf8(data)])).0;
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{id} ")))
        .unwrap_or_else(|| panic!("{table}"));
    (
        row["name"].as_str().map(String::from),
        row["status"].as_str().unwrap().to_string(),
        line.to_string(),
    )
}

/// A data directory as the real processes leave it: `splitstore daemon --events N` (activity.db), then
/// `splitstore server` for a moment (config.db, projects and settings).
pub fn seed_data_dir(data: &Path, events: u64) {
    let (d, events) = (utf8(data), events.to_string());
    let daemon = run_splitstore(["daemon", "--events", &events, "--data-dir", d]);
    assert!(daemon.status.success(), "seeding daemon: {daemon:?}");
    let server = run_splitstore(["server", "--seconds", "0.3", "--data-dir", d]);
    assert!(server.status.success(), "seeding server: {server:?}");
}

/// The value of a `key=value` field of the summary line starting with `head` (`daemon: `, `server: `).
pub fn summary_value<'a>(stdout: &'a str, head: &str, key: &str) -> &'a str {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(head))
        .unwrap_or_else(|| panic!("no summary line {head:?} in {stdout:?}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
}

/// [`summary_value`] as a number.
pub fn summary_field(stdout: &str, head: &str, key: &str) -> u64 {
    let value = summary_value(stdout, head, key);
    value
        .parse()
        .unwrap_or_else(|_| panic!("{key}={value} is not a number in {stdout:?}"))
}

/// A path as text for a command line (temporary paths are UTF-8).
pub fn utf8(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// A copy of the data directory `data` (every file, modes and times kept: `cp -a`) at `to`, which is returned.
pub fn copy_data_dir(data: &Path, to: PathBuf) -> PathBuf {
    let copied = Command::new("cp")
        .arg("-a")
        .arg(data)
        .arg(&to)
        .status()
        .expect("cp runs");
    assert!(copied.success(), "cp -a {} {}", data.display(), to.display());
    to
}

/// `PRAGMA integrity_check` of the file (through SQLite, so with its WAL) is clean.
#[track_caller]
pub fn assert_integrity_ok(db: &Path) {
    let problems = store_core::check::integrity_check(&read_only(db)).expect("integrity_check runs");
    assert!(problems.is_empty(), "integrity_check of {}: {problems:?}", db.display());
}

/// `splitstore daemon` recording old history for retention to meet: 20 000 events dated 30 days back, in
/// groups of 500 (add `--data-dir`, and the key where there is one).
pub const OLD_HISTORY: [&str; 7] = ["daemon", "--backdate-days", "30", "--events", "20000", "--batch", "500"];

/// A daemon's retention of everything older than 7 days, 2000 rows per step, recording in groups of 100.
pub const PRUNING_WEEK_OLD: [&str; 6] = [
    "--batch",
    "100",
    "--prune-older-than-days",
    "7",
    "--prune-step-rows",
    "2000",
];

/// The `backup: <path>` lines of `splitstore backup`: every line of its stdout.
pub fn backup_paths(out: &std::process::Output) -> Vec<PathBuf> {
    texts(out)
        .0
        .lines()
        .map(|l| {
            PathBuf::from(
                l.strip_prefix("backup: ")
                    .unwrap_or_else(|| panic!("unexpected line {l:?}")),
            )
        })
        .collect()
}

/// `splitstore backup --data-dir DATA`, which must succeed: the backup of config.db it took.
#[track_caller]
pub fn config_backup_taken(data: &Path) -> PathBuf {
    let out = run_splitstore(["backup", "--data-dir", utf8(data)]);
    assert!(out.status.success(), "{out:?}");
    backup_paths(&out)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("/config-"))
        .expect("a backup of config.db")
}

/// The id activity.db in `data` hands out next: one event recorded by its writer, opened and closed here (a
/// test that no id is handed out again compares it with the highest one a kept file holds).
pub fn next_event_id(data: &Path) -> i64 {
    splitstore::activity_store::ActivityWriter::open_in(data)
        .unwrap()
        .record_event(&splitstore::activity_store::NewEvent::new(
            None,
            "input",
            chrono::Utc::now(),
        ))
        .unwrap()
}

/// `data/activity.db` created at the schema version before this build's, as an earlier build left it: the
/// next owner's open upgrades it, taking a pre-migration backup first. Returns its path and that version.
pub fn activity_db_one_version_back(data: &Path) -> (PathBuf, u32) {
    let db = activity_store::SCHEMA.path_in(data);
    let older = activity_store::SCHEMA.end_version() - 1;
    let options = activity_store::WriterOptions {
        open: store_core::OpenOptions {
            target_version: Some(older),
            ..Default::default()
        },
        ..Default::default()
    };
    drop(activity_store::ActivityWriter::open_with(&db, &options).unwrap());
    (db, older)
}

/// A service manager that starts splitstore's daemon or server with `NOTIFY_SOCKET` set (systemd's
/// `Type=notify`): the manager's end of that socket, and what it heard.
pub struct ServiceManager {
    socket: std::os::unix::net::UnixDatagram,
    /// What `NOTIFY_SOCKET` says: the socket's path, or `@` and its abstract name.
    pub address: std::ffi::OsString,
    /// Every notification so far, each as its lines (`READY=1`, `STATUS=...`).
    pub heard: Vec<Vec<String>>,
}

impl ServiceManager {
    /// A manager listening on the socket `notify` in `dir`.
    pub fn in_dir(dir: &Path) -> ServiceManager {
        let path = dir.join("notify");
        let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        ServiceManager::on(socket, path.into_os_string())
    }

    /// A manager listening on an abstract socket (Linux's; one in a container may name one).
    #[cfg(target_os = "linux")]
    pub fn abstract_named(name: &str) -> ServiceManager {
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        let socket = std::os::unix::net::UnixDatagram::bind_addr(&address).unwrap();
        ServiceManager::on(socket, format!("@{name}").into())
    }

    /// The manager reading `socket`, which `NOTIFY_SOCKET=address` names.
    fn on(socket: std::os::unix::net::UnixDatagram, address: std::ffi::OsString) -> ServiceManager {
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(60)))
            .unwrap();
        ServiceManager {
            socket,
            address,
            heard: Vec::new(),
        }
    }

    /// `splitstore <args>` started as this manager starts a service.
    pub fn start(&self, args: &[&str]) -> std::process::Child {
        self.start_with(&[], args)
    }

    /// `splitstore <args>` started as this manager starts a service, with `env` set too (a watchdog's).
    pub fn start_with(&self, env: &[(&str, &str)], args: &[&str]) -> std::process::Child {
        splitstore()
            .env("NOTIFY_SOCKET", &self.address)
            .envs(env.iter().copied())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for the next notification (60 s at most: a start that says nothing that long fails the test).
    pub fn next(&mut self) -> &[String] {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("the starting process says something within 60 s");
        let text = String::from_utf8(buf[..n].to_vec()).unwrap();
        self.heard.push(text.lines().map(str::to_string).collect());
        self.heard.last().unwrap()
    }

    /// Waits until a notification holds `line` (or one starting with it, for a `prefix`), and returns it.
    pub fn until(&mut self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        loop {
            let heard = self.next().to_vec();
            if heard.iter().any(|l| wanted(l)) {
                return heard;
            }
        }
    }

    /// The statuses heard so far, in order.
    pub fn statuses(&self) -> Vec<&str> {
        self.heard
            .iter()
            .flatten()
            .filter_map(|l| l.strip_prefix("STATUS="))
            .collect()
    }

    /// Everything sent after the process ended (nothing waits: it has ended).
    pub fn rest(&mut self) -> Vec<Vec<String>> {
        self.socket.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut rest = Vec::new();
        while let Ok(n) = self.socket.recv(&mut buf) {
            rest.push(String::from_utf8_lossy(&buf[..n]).lines().map(str::to_string).collect());
        }
        self.socket.set_nonblocking(false).unwrap();
        rest
    }
}

/// `chattr +i` / `+a` (linux/fs.h): the attributes that refuse every writer, root included.
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
pub const FS_IMMUTABLE_FL: libc::c_int = 0x10;
pub const FS_APPEND_FL: libc::c_int = 0x20;

/// Sets (or clears) `flag` on the file at `path`, as `chattr` does; false where the file system or this user
/// cannot.
pub fn set_attribute(path: &Path, flag: libc::c_int, on: bool) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer it is given; the descriptor is open.
    if unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_GETFLAGS as _, &mut flags) } != 0 {
        return false;
    }
    flags = if on { flags | flag } else { flags & !flag };
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer it is given; the descriptor is open.
    unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_SETFLAGS as _, &flags) == 0 }
}

/// Clears `.1` on the file at `.0` when dropped, whatever the assertions say: an immutable file or folder
/// would keep the temporary folder from being removed.
pub struct Cleared<'a>(pub &'a Path, pub libc::c_int);

impl Drop for Cleared<'_> {
    fn drop(&mut self) {
        set_attribute(self.0, self.1, false);
    }
}

/// The names in the folder `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
