//! The real PC/SC stack under the card tests: Debian's `pcscd` with vsmartcard's `vpcd` reader
//! driver ("Virtual PCD", a TCP socket on 127.0.0.1:35963 our virtual card connects to),
//! started when none runs, restartable, and a lock that serializes every test sharing that one
//! reader — across test binaries and worktrees, since they all talk to the same daemon.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Error, Protocols, ReaderState, Scope, ShareMode, State};

/// Start of the vpcd reader's name as pcscd lists it ("Virtual PCD 00 00").
pub const READER_PREFIX: &str = "Virtual PCD";
/// Where the vpcd driver listens for the card side.
pub const VPCD_ADDR: &str = "127.0.0.1:35963";
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
const VPCD_CONF: &str = "/etc/reader.conf.d/vpcd";
const PID_FILE: &str = "/run/pcscd/pcscd.pid";
const INSTALL: &str = "apt-get install -y pcscd vsmartcard-vpcd (scripts/setup.sh does this)";

/// How long pcscd gets to come up, or to notice a card arrive or leave (it polls vpcd about
/// every 400 ms).
pub const STACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Held while a test uses the virtual reader; dropping it lets the next test in.
pub struct PcscLock {
    _file: File,
}

/// Blocks until no other test (in any test binary or worktree on this machine) holds the
/// virtual reader. An flock is released by the kernel when its holder dies, so a crashed
/// test cannot wedge the others.
pub fn pcsc_lock() -> PcscLock {
    let path = std::env::temp_dir().join("hsmon-pcsc-tests.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open the lock file {}: {e}", path.display()));
    // nix's flock rather than std's File::lock (Rust 1.89), for the crate's MSRV of 1.85.
    nix::fcntl::flock(file.as_raw_fd(), nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
    PcscLock { _file: file }
}

/// The usual start of a card test: take the lock, make sure pcscd runs with the vpcd reader,
/// and return the guard and the reader's name.
pub fn pcsc_test() -> (PcscLock, CString) {
    let lock = pcsc_lock();
    let reader = ensure_pcscd();
    (lock, reader)
}

fn pcscd_path() -> PathBuf {
    for candidate in ["/usr/sbin/pcscd", "/usr/local/sbin/pcscd", "/sbin/pcscd"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    PathBuf::from("pcscd")
}

/// Fails with the packages to install when pcscd or the vpcd driver is missing.
pub fn require_pcsc_packages() {
    let pcscd = pcscd_path();
    let found = pcscd.is_absolute()
        || Command::new("sh")
            .arg("-c")
            .arg("command -v pcscd")
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    assert!(found, "pcscd is not installed: {INSTALL}");
    assert!(
        Path::new(VPCD_DRIVER).exists() && Path::new(VPCD_CONF).exists(),
        "the vpcd reader driver is not installed ({VPCD_DRIVER}, {VPCD_CONF}): {INSTALL}"
    );
}

/// The name of the vpcd reader, if this context lists it.
pub fn find_reader(ctx: &Context) -> Option<CString> {
    ctx.list_readers_owned()
        .ok()?
        .into_iter()
        .find(|r| r.to_string_lossy().starts_with(READER_PREFIX))
}

/// Makes sure pcscd runs and lists the vpcd reader; starts it when it does not run. Returns
/// the reader's name.
pub fn ensure_pcscd() -> CString {
    require_pcsc_packages();
    match Context::establish(Scope::User) {
        Ok(ctx) => {
            if let Some(reader) = find_reader(&ctx) {
                return reader;
            }
            // Just started by someone else: the reader may not be there yet.
            wait_for_reader()
        }
        Err(Error::NoService) | Err(Error::ServiceStopped) => {
            start_pcscd();
            wait_for_reader()
        }
        Err(e) => panic!("cannot talk to pcscd: {e} ({:#010X})", e as u32),
    }
}

/// Starts pcscd as a daemon (it forks and returns once it is initialised).
pub fn start_pcscd() {
    require_pcsc_packages();
    let status = Command::new(pcscd_path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run pcscd: {e}; {INSTALL}"));
    // A non-zero status may mean another pcscd won the race; the reader check decides.
    if !status.success() {
        eprintln!("pcscd exited with {status}; checking whether one runs anyway");
    }
}

/// The pid pcscd wrote when it started as a daemon (pcscd 1.9.9 writes "5118\n\0": the NUL
/// goes too).
pub fn pcscd_pid() -> Option<i32> {
    std::fs::read_to_string(PID_FILE)
        .ok()?
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Stops the running pcscd (the one named in its pid file): SIGTERM, then SIGKILL after 5 s.
/// Every PC/SC context in every process loses its service, and vpcd drops the virtual card.
pub fn stop_pcscd() {
    // A daemon that has just started may not have written its pid file yet.
    let deadline = Instant::now() + STACK_TIMEOUT;
    let pid = loop {
        match pcscd_pid() {
            Some(pid) if alive(pid) => break pid,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => panic!(
                "no running pcscd named in {PID_FILE}: it was not started as a daemon (systemd socket activation?), cannot stop it"
            ),
        }
    };
    let target = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        let _ = nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(!alive(pid), "pcscd (pid {pid}) did not stop");
}

/// Kills pcscd and starts a new one, as an administrator restarting the service would.
/// Returns the reader's name once the new daemon lists it.
pub fn restart_pcscd() -> CString {
    stop_pcscd();
    start_pcscd();
    wait_for_reader()
}

/// Waits until pcscd answers and lists the vpcd reader.
pub fn wait_for_reader() -> CString {
    let deadline = Instant::now() + STACK_TIMEOUT;
    let mut last = String::from("nothing tried");
    while Instant::now() < deadline {
        match Context::establish(Scope::User) {
            Ok(ctx) => match find_reader(&ctx) {
                Some(reader) => return reader,
                None => last = format!("readers: {:?}", ctx.list_readers_owned()),
            },
            Err(e) => last = format!("establish: {e}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "pcscd does not list a \"{READER_PREFIX}\" reader after {STACK_TIMEOUT:?} ({last}); is {VPCD_CONF} there? {INSTALL}"
    )
}

/// Waits until the reader shows a card (`Some(atr)`: with that ATR) or none (`None`).
pub fn wait_card(reader: &CStr, want: Option<&[u8]>) {
    if let Err(e) = try_wait_card(reader, want) {
        panic!("{e}");
    }
}

/// [`wait_card`] without the panic.
pub fn try_wait_card(reader: &CStr, want: Option<&[u8]>) -> Result<(), String> {
    let ctx = Context::establish(Scope::User).map_err(|e| format!("pcscd does not answer: {e}"))?;
    let mut states = [ReaderState::new(reader.to_owned(), State::UNAWARE)];
    let deadline = Instant::now() + STACK_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(left.min(Duration::from_millis(500)), &mut states) {
            Ok(()) | Err(Error::Timeout) => {}
            Err(e) => return Err(format!("SCardGetStatusChange on {reader:?}: {e}")),
        }
        let state = states[0].event_state();
        let done = match want {
            Some(atr) => state.contains(State::PRESENT) && states[0].atr() == atr,
            None => state.contains(State::EMPTY),
        };
        if done {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "reader {reader:?} never showed {} within {STACK_TIMEOUT:?} (state {state:?}, ATR {:02X?})",
                if want.is_some() {
                    "the card"
                } else {
                    "an empty slot"
                },
                states[0].atr()
            ));
        }
        states[0].sync_current_state();
    }
}

/// Connects in shared mode with T=0 or T=1, whichever the card offers.
pub fn connect_shared(ctx: &Context, reader: &CStr) -> pcsc::Card {
    ctx.connect(reader, ShareMode::Shared, Protocols::ANY)
        .unwrap_or_else(|e| panic!("SCardConnect({reader:?}, shared): {e}"))
}

/// Lets go of a card handle with SCARD_LEAVE_CARD. The pcsc crate's `Drop` would disconnect
/// with SCARD_RESET_CARD, resetting the card under every other test handle; on failure the
/// handle is leaked rather than dropped for the same reason.
pub fn leave(card: pcsc::Card) {
    if let Err((card, e)) = card.disconnect(Disposition::LeaveCard) {
        eprintln!(
            "SCardDisconnect(LEAVE_CARD) failed: {e}; leaking the handle instead of resetting"
        );
        std::mem::forget(card);
    }
}
