//! What `splitstore daemon` and `splitstore server` tell a service manager that started them with
//! `NOTIFY_SOCKET` set (systemd's `Type=notify`, sd_notify(3)): what the start is doing (`STATUS=`), more
//! time while it works (`EXTEND_TIMEOUT_USEC=`), and `READY=1` once the owner's file is open. Without
//! `NOTIFY_SOCKET` nothing is sent.
//!
//! Why: the first start after an upgrade can take minutes on years of history (a legacy file split, or the
//! owner's file copied whole and then migrated), and may wait for a peer's split or a backup folder. A
//! service manager that hears nothing ends the start at its start timeout (systemd's `TimeoutStartSec`,
//! 90 s by default), and the next start begins the same work over: a start loop that never finishes. So a
//! start asks for [`ASK_FOR`] more every [`ASK_EVERY`] until it is ready
//! (<https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html>, `EXTEND_TIMEOUT_USEC`), on a
//! thread of its own, since the longest phases are single SQLite calls (a copy, an index build) with nothing
//! to hook a report into. So a start that never ends (a disk that stopped answering) is not ended by the
//! timeout; its status says what it has been doing and for how long. One whose process is stopped (SIGSTOP,
//! a debugger) is ended [`ASK_FOR`] after its last ask.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a start asks for more time.
const ASK_EVERY: Duration = Duration::from_secs(1);

/// How much more time each ask is for: what a start may go without asking (a loaded machine delaying the
/// asking thread) before the service manager ends it.
const ASK_FOR: Duration = Duration::from_secs(30);

struct Start {
    context: String,
    /// `NOTIFY_SOCKET`: the manager's datagram socket, a path or, after an `@`, an abstract name.
    socket: OsString,
    /// What it is doing, and since when.
    doing: String,
    since: Instant,
    /// While it waits for another process: what it was doing before, said again once the wait is over.
    before_wait: Option<String>,
    ready: bool,
    /// A failed send was said (once: the socket's problem does not change between sends).
    failure_said: bool,
}

static START: Mutex<Option<Start>> = Mutex::new(None);

fn the_start() -> std::sync::MutexGuard<'static, Option<Start>> {
    START.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Begins telling the service manager, when there is one to tell (`NOTIFY_SOCKET` is set): the start of
/// `splitstore <context>` asks for time every [`ASK_EVERY`] on a thread of its own until [`ready`].
pub fn starting(context: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let mut start = the_start();
    let told = start.insert(Start {
        context: context.to_string(),
        socket,
        doing: "starting".to_string(),
        since: Instant::now(),
        before_wait: None,
        ready: false,
        failure_said: false,
    });
    ask_for_time(told);
    drop(start);
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(ASK_EVERY);
            match &mut *the_start() {
                Some(told) if !told.ready => ask_for_time(told),
                _ => return,
            }
        }
    });
}

/// Says what the start begins now (a phase of a split or of a migration; a wait for a peer's split, said
/// each second), at once and at each ask after, with how long it has been at it. Nothing when no start is
/// being told: a command that is not an owner's start, or no service manager.
pub fn doing(what: impl Display) {
    while_starting(|told| {
        told.before_wait = None;
        begin(told, one_line(what));
    });
}

/// Says that the start waits for another process (`what`: for what, and whom), until [`waited`].
pub fn waiting(what: impl Display) {
    while_starting(|told| {
        if told.before_wait.is_none() {
            told.before_wait = Some(told.doing.clone());
        }
        begin(told, one_line(what));
    });
}

/// The wait is over: says again what the start was doing before it (and goes on timing it from now).
pub fn waited() {
    while_starting(|told| {
        if let Some(before) = told.before_wait.take() {
            begin(told, before);
        }
    });
}

/// Updates what the current phase says (rows copied so far), sent with the next ask: an update every few
/// thousand rows is not a notification each, and the time told stays the phase's. Formatted only when a
/// start is being told.
pub fn progress(what: impl Display) {
    while_starting(|told| told.doing = one_line(what));
}

/// The start is over: the owner's file is open and it works as `what` says.
pub fn ready(what: impl Display) {
    while_starting(|told| {
        told.ready = true;
        let status = format!("READY=1\nSTATUS={}\n", one_line(what));
        send(told, &status);
    });
}

/// Runs `tell` on the start being told, if one is and it is not ready yet.
fn while_starting(tell: impl FnOnce(&mut Start)) {
    if let Some(told) = &mut *the_start()
        && !told.ready
    {
        tell(told);
    }
}

/// `doing` begins now: said at once, and timed from now.
fn begin(told: &mut Start, doing: String) {
    told.doing = doing;
    told.since = Instant::now();
    ask_for_time(told);
}

fn ask_for_time(told: &mut Start) {
    let status = match told.since.elapsed().as_secs() {
        0 => told.doing.clone(),
        n => format!("{} ({n} s)", told.doing),
    };
    let asks = format!("EXTEND_TIMEOUT_USEC={}\nSTATUS={status}\n", ASK_FOR.as_micros());
    send(told, &asks);
}

/// Sends one notification (sd_notify(3)'s protocol: `KEY=value` lines in one datagram), never waiting: a
/// socket nobody reads holds 10 datagrams on Linux (`net.unix.max_dgram_qlen`; systemd raises it to 512), and
/// a start waiting on it would hang there, holding up its split or migration. One that cannot be sent is
/// dropped, said once.
fn send(told: &mut Start, message: &str) {
    let sent = UnixDatagram::unbound().and_then(|socket| {
        socket.set_nonblocking(true)?;
        match told.socket.as_bytes().strip_prefix(b"@") {
            Some(name) => send_to_abstract(&socket, name, message),
            None => socket.send_to(message.as_bytes(), &told.socket),
        }
    });
    if let Err(e) = sent
        && !told.failure_said
    {
        told.failure_said = true;
        let _ = writeln!(
            std::io::stderr(),
            "splitstore {}: warning: could not tell the service manager at NOTIFY_SOCKET={} ({e}): one that \
             waits for it (systemd's `Type=notify`) ends this start at its start timeout",
            told.context,
            told.socket.to_string_lossy()
        );
    }
}

/// An abstract socket (Linux's, named with a leading `@` in `NOTIFY_SOCKET`: a manager in a container).
#[cfg(target_os = "linux")]
fn send_to_abstract(socket: &UnixDatagram, name: &[u8], message: &str) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message.as_bytes(), &address)
}

#[cfg(not(target_os = "linux"))]
fn send_to_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> std::io::Result<usize> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets are Linux's",
    ))
}

/// A status is one line of the notification (its fields are separated by newlines): a path holding one
/// would end it early.
fn one_line(text: impl Display) -> String {
    text.to_string().replace(['\n', '\r'], " ")
}
