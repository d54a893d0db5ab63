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
//!
//! Once ready, a process whose manager keeps a watchdog on it (systemd's `WatchdogSec=`, which sets
//! `WATCHDOG_USEC`) says it is still working ([`Running::still_working`]) from the loop that records or
//! serves: one stuck in a write that never returns records nothing, and only its manager, ending and
//! starting it again, would notice before the user finds a hole in their history. Its status then says what
//! it does and, beside it, what keeps part of that from being done ([`Running::troubled`]).

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

/// The service manager to tell, as `splitstore <context>`.
struct Manager {
    context: String,
    /// `NOTIFY_SOCKET`: the manager's datagram socket, a path or, after an `@`, an abstract name.
    socket: OsString,
    /// A failed send was said (once: the socket's problem does not change between sends).
    failure_said: bool,
}

/// A start being told, until it is ready.
struct Start {
    manager: Manager,
    /// What it is doing, and since when.
    doing: String,
    since: Instant,
    /// While it waits for another process: what it was doing before, said again once the wait is over.
    before_wait: Option<String>,
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
        manager: Manager {
            context: context.to_string(),
            socket,
            failure_said: false,
        },
        doing: "starting".to_string(),
        since: Instant::now(),
        before_wait: None,
    });
    ask_for_time(told);
    drop(start);
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(ASK_EVERY);
            match &mut *the_start() {
                Some(told) => ask_for_time(told),
                None => return,
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

/// The start is over: the owner's file is open and it works as `what` says. Returns what the loop that does
/// that work tells the manager from then on.
pub fn ready(what: impl Display) -> Running {
    let Some(Start { mut manager, .. }) = the_start().take() else {
        return Running(None);
    };
    let doing = one_line(what);
    manager.send(&format!("READY=1\nSTATUS={doing}\n"));
    let watchdog = watchdog_timeout(&manager.context).map(|timeout| KeptWatchdog {
        every: timeout / 2,
        next: Instant::now(),
    });
    Running(Some(Told {
        manager,
        doing,
        watchdog,
    }))
}

/// What a ready process tells its service manager while it runs, from the loop that records or serves: that
/// it still works, to the manager's watchdog (systemd's `WatchdogSec=`), so that a process stuck in one call
/// (a write to a disk that stopped answering) stops telling it and is ended and started again (a thread of
/// its own would go on telling it through such a hang); and, in its status beside what it does, what keeps
/// part of its work from being done (reports that fail, retention paused), where an operator looks
/// (`systemctl status`) rather than only in the log. Nothing when no manager is told.
pub struct Running(Option<Told>);

struct Told {
    manager: Manager,
    /// What the process does, as `READY=1` said it.
    doing: String,
    watchdog: Option<KeptWatchdog>,
}

struct KeptWatchdog {
    /// Half the watchdog's timeout, as sd_watchdog_enabled(3) advises: a loop turn that takes up to that
    /// long still tells it in time.
    every: Duration,
    next: Instant,
}

impl Running {
    /// Says `WATCHDOG=1` when half the watchdog's timeout has gone by since it was last said: called at each
    /// turn of the loop (a clock read when a watchdog is kept; nothing else).
    pub fn still_working(&mut self) {
        if let Some(Told {
            manager,
            watchdog: Some(kept),
            ..
        }) = &mut self.0
        {
            let now = Instant::now();
            if now >= kept.next {
                manager.send("WATCHDOG=1\n");
                kept.next = now + kept.every;
            }
        }
    }

    /// Says, beside what the process does, what keeps part of its work from being done (`trouble`): told when
    /// it begins, not at each time it is met.
    pub fn troubled(&mut self, trouble: impl Display) {
        if let Some(told) = &mut self.0 {
            let status = format!("STATUS={}; {}\n", told.doing, one_line(trouble));
            told.manager.send(&status);
        }
    }

    /// What kept part of the work from being done (told by [`Running::troubled`]) is over: the status says
    /// again only what the process does.
    pub fn untroubled(&mut self) {
        if let Some(told) = &mut self.0 {
            let status = format!("STATUS={}\n", told.doing);
            told.manager.send(&status);
        }
    }
}

/// The watchdog's timeout the manager set (`WATCHDOG_USEC`), when it is this process's: `WATCHDOG_PID`,
/// when set, names the process the manager watches, and a child that inherited the variables is not it.
fn watchdog_timeout(context: &str) -> Option<Duration> {
    let micros = std::env::var_os("WATCHDOG_USEC")?;
    if std::env::var_os("WATCHDOG_PID").is_some_and(|pid| pid.to_str() != Some(&std::process::id().to_string())) {
        return None;
    }
    match micros.to_str().and_then(|m| m.parse::<u64>().ok()).filter(|&m| m > 0) {
        Some(m) => Some(Duration::from_micros(m)),
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "splitstore {context}: warning: WATCHDOG_USEC={} is not a number of microseconds: the service \
                 manager's watchdog is not told, and ends this process at its timeout",
                micros.to_string_lossy()
            );
            None
        }
    }
}

/// Runs `tell` on the start being told, if one is (until it is ready).
fn while_starting(tell: impl FnOnce(&mut Start)) {
    if let Some(told) = &mut *the_start() {
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
    told.manager.send(&asks);
}

impl Manager {
    /// Sends one notification (sd_notify(3)'s protocol: `KEY=value` lines in one datagram), never waiting: a
    /// socket nobody reads holds 10 datagrams on Linux (`net.unix.max_dgram_qlen`; systemd raises it to 512),
    /// and a start waiting on it would hang there, holding up its split or migration (or a daemon's
    /// recording). One that cannot be sent is dropped, said once.
    fn send(&mut self, message: &str) {
        let sent = UnixDatagram::unbound().and_then(|socket| {
            socket.set_nonblocking(true)?;
            match self.socket.as_bytes().strip_prefix(b"@") {
                Some(name) => send_to_abstract(&socket, name, message),
                None => socket.send_to(message.as_bytes(), &self.socket),
            }
        });
        if let Err(e) = sent
            && !self.failure_said
        {
            self.failure_said = true;
            let _ = writeln!(
                std::io::stderr(),
                "splitstore {}: warning: could not tell the service manager at NOTIFY_SOCKET={} ({e}): one that \
                 waits for it (systemd's `Type=notify`) ends this start at its start timeout, one that keeps a \
                 watchdog ends the process at the watchdog's",
                self.context,
                self.socket.to_string_lossy()
            );
        }
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
