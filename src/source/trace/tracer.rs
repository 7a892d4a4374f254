//! The tracer (runs in the helper process): launches the program under ptrace with a
//! seccomp filter, or attaches to a running one (`--pid`), follows its forks, clones and
//! execs, keeps the fd tables, and writes [`Wire`] messages for every read, write and tty
//! ioctl on a tracked descriptor. It never alters a syscall and never sets
//! PTRACE_O_EXITKILL.
//!
//! Stops: a launched program stops only at the watched syscalls (SECCOMP_RET_TRACE); the
//! tracer asks for the syscall-exit stop (PTRACE_SYSCALL) only when the result matters,
//! then reads the bytes with process_vm_readv using the returned length. An attached program
//! has no filter (one cannot be added from outside), so it runs under PTRACE_SYSCALL.
//!
//! The loop blocks in waitpid; hsmon going away (its control pipe closing) interrupts it
//! (see [`Tracer::run`]).

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::sys::pthread::{Pthread, pthread_kill, pthread_self};
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::uio::{RemoteIoVec, process_vm_readv};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::fds::{self, Endpoint, Family, FdTable, LinkTarget, Processes, Slot};
use super::sys;
use super::syscalls::{self, Arch, Buffer, Request};
use super::termios::{self, TtyRequest};
use super::wire::Wire;
use crate::event::{Direction, LineSettings, ModemLines};

/// The hidden first argument that makes `hsmon` the tracer helper.
pub const HELPER_ARG: &str = "__hsmon-trace-helper";

/// Most bytes taken from one read or write (a larger call is cut and the rest counted lost).
const MAX_IO: usize = 16 * 1024 * 1024;
/// Most iovec entries looked at per call (IOV_MAX is 1024).
const MAX_IOV: u64 = 1024;

const PTRACE_EVENT_FORK: i32 = 1;
const PTRACE_EVENT_VFORK: i32 = 2;
const PTRACE_EVENT_CLONE: i32 = 3;
const PTRACE_EVENT_EXEC: i32 = 4;
const PTRACE_EVENT_SECCOMP: i32 = 7;
const PTRACE_EVENT_STOP: i32 = 128;

/// What the helper was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Launch {
        program: OsString,
        args: Vec<OsString>,
        stdout_to_stderr: bool,
    },
    Attach {
        pid: u32,
    },
}

/// The helper's command line: `__hsmon-trace-helper WIRE_FD CONTROL_FD (--pid N |
/// [--stdout-to-stderr] -- PROGRAM ARGS...)`.
pub fn helper_args(wire: i32, control: i32, target: &Target) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![
        HELPER_ARG.into(),
        wire.to_string().into(),
        control.to_string().into(),
    ];
    match target {
        Target::Attach { pid } => {
            v.push("--pid".into());
            v.push(pid.to_string().into());
        }
        Target::Launch {
            program,
            args,
            stdout_to_stderr,
        } => {
            if *stdout_to_stderr {
                v.push("--stdout-to-stderr".into());
            }
            v.push("--".into());
            v.push(program.clone());
            v.extend(args.iter().cloned());
        }
    }
    v
}

fn parse_helper_args(args: &[OsString]) -> Option<(i32, i32, Target)> {
    let wire = args.get(1)?.to_str()?.parse().ok()?;
    let control = args.get(2)?.to_str()?.parse().ok()?;
    let rest = args.get(3..)?;
    let target = match rest.first()?.to_str()? {
        "--pid" => Target::Attach {
            pid: rest.get(1)?.to_str()?.parse().ok()?,
        },
        first => {
            let stdout_to_stderr = first == "--stdout-to-stderr";
            let i = usize::from(stdout_to_stderr);
            if rest.get(i)?.to_str()? != "--" {
                return None;
            }
            Target::Launch {
                program: rest.get(i + 1)?.clone(),
                args: rest.get(i + 2..)?.to_vec(),
                stdout_to_stderr,
            }
        }
    };
    Some((wire, control, target))
}

/// Runs the helper; returns its process exit status.
pub fn helper_main(args: &[OsString]) -> u8 {
    let Some((wire_fd, control_fd, target)) = parse_helper_args(args) else {
        return 2;
    };
    let (Ok(wire), Ok(control)) = (sys::take_fd(wire_fd), sys::take_fd(control_fd)) else {
        return 2;
    };
    let mut t = Tracer::new(wire, target.clone());
    let saved = match sys::helper_signals() {
        Ok(s) => s,
        Err(e) => {
            t.send(&refused(
                false,
                format!("cannot set up the tracer's signals: {e}"),
            ));
            return 3;
        }
    };
    let started = match &target {
        Target::Launch {
            program,
            args,
            stdout_to_stderr,
            ..
        } => t.launch(program, args, *stdout_to_stderr, &saved),
        Target::Attach { pid } => t.attach(*pid),
    };
    if let Err(w) = started {
        t.send(&w);
        t.flush();
        return 3;
    }
    // The program has hsmon's stdin/stdout/stderr; the helper lets go of its copies, so a
    // pipeline reading hsmon's output ends when hsmon and the program have, not the helper.
    release_stdio();
    t.run(control)
}

fn release_stdio() {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    if let Ok(null) = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()) {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null, fd);
        }
        let _ = nix::unistd::close(null);
    }
}

fn refused(usage: bool, message: String) -> Wire {
    Wire::Refused { usage, message }
}

/// What ptrace's EPERM means, with the fixes: the cause that applies first when it can be
/// seen (another user's process, a process already traced, Yama's scope), then the others.
fn eperm_message(what: &str, target: Option<u32>) -> String {
    let mut known = String::new();
    if let Some(pid) = target {
        let field = |name: &str| status_field(&pid.to_string(), name);
        let me = status_field("self", "Uid:").unwrap_or(0);
        if let Some(uid) = field("Uid:").filter(|u| *u != me && me != 0) {
            known = format!(
                "process {pid} belongs to uid {uid} and hsmon runs as uid {me}: run hsmon as that user or as root. "
            );
        } else if let Some(t) = field("TracerPid:").filter(|t| *t != 0) {
            known = format!(
                "process {pid} is already traced by process {t} (strace, gdb): a process has one tracer; stop that one first. "
            );
        }
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| format!("kernel.yama.ptrace_scope is {} here", s.trim()))
        .unwrap_or_else(|_| "kernel.yama.ptrace_scope".to_string());
    format!(
        "{what}: ptrace is not permitted (EPERM). {known}Causes and fixes: another user's \
         process (run hsmon as that user or root); {scope} (1 allows only descendants: start \
         the program under hsmon trace -- CMD, or sudo sysctl kernel.yama.ptrace_scope=0; 2 \
         needs root; 3 forbids ptrace); a container's seccomp profile that blocks ptrace \
         (docker: --cap-add SYS_PTRACE --security-opt seccomp=unconfined); a process already \
         traced (strace, gdb)"
    )
}

/// The first number of a `/proc/PID/status` line (`Uid:` gives the real uid).
fn status_field(pid: &str, name: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A task's state between its stops.
#[derive(Debug, Default)]
struct Task {
    /// The request seen at syscall entry, waiting for its result.
    entry: Option<Request>,
    /// The architecture of that entry.
    arch: Option<Arch>,
}

struct Tracer {
    out: Option<BufWriter<File>>,
    target: Target,
    /// The program's first process.
    main: Option<Pid>,
    tasks: HashMap<Pid, Task>,
    procs: Processes,
    /// Per (process, fd): the settings and modem lines the program set.
    lines: HashMap<(u32, i32), (Option<LineSettings>, ModemLines)>,
    /// Per (process, fd): the settings a "not kept" message was sent for (said once).
    told: HashMap<(u32, i32), LineSettings>,
    /// Leaving: every task is interrupted and detached at its next stop.
    detaching: bool,
    exit: Option<Wire>,
}

impl Tracer {
    fn new(wire: File, target: Target) -> Tracer {
        Tracer {
            out: Some(BufWriter::with_capacity(256 * 1024, wire)),
            target,
            main: None,
            tasks: HashMap::new(),
            procs: Processes::default(),
            lines: HashMap::new(),
            told: HashMap::new(),
            detaching: false,
            exit: None,
        }
    }

    fn launched(&self) -> bool {
        matches!(self.target, Target::Launch { .. })
    }

    /// Writes a message; a pipe that fails means hsmon is gone: stop reporting, and let
    /// go of an attached program.
    fn send(&mut self, w: &Wire) {
        let Some(out) = self.out.as_mut() else { return };
        let ok = serde_json::to_writer(&mut *out, w).is_ok() && out.write_all(b"\n").is_ok();
        if !ok {
            self.hsmon_gone();
        }
    }

    fn flush(&mut self) {
        if let Some(out) = self.out.as_mut() {
            if out.flush().is_err() {
                self.hsmon_gone();
            }
        }
    }

    fn hsmon_gone(&mut self) {
        self.out = None;
        if !self.launched() {
            self.start_detach();
        }
        // A launched program keeps its seccomp filter, whose watched calls fail with ENOSYS
        // without a tracer: the helper stays, silent, and continues every stop until the
        // program exits.
    }

    fn options() -> Options {
        Options::PTRACE_O_TRACESYSGOOD
            | Options::PTRACE_O_TRACEFORK
            | Options::PTRACE_O_TRACEVFORK
            | Options::PTRACE_O_TRACECLONE
            | Options::PTRACE_O_TRACEEXEC
            | Options::PTRACE_O_TRACESECCOMP
    }

    fn launch(
        &mut self,
        program: &OsString,
        args: &[OsString],
        stdout_to_stderr: bool,
        saved: &sys::SavedSignals,
    ) -> Result<(), Wire> {
        let Some(path) = resolve_program(program) else {
            return Err(refused(
                true,
                format!(
                    "program not found: {} (not a file, or not on PATH={})",
                    program.to_string_lossy(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ));
        };
        let cstr = |o: &OsString| CString::new(o.as_bytes()).ok();
        let mut argv = vec![cstr(program).ok_or_else(|| refused(true, "NUL in program".into()))?];
        for a in args {
            argv.push(cstr(a).ok_or_else(|| refused(true, "NUL in an argument".into()))?);
        }
        let filter = seccomp_filter().map_err(|e| refused(false, e))?;
        let l = sys::Launch {
            program: CString::new(path.as_os_str().as_bytes())
                .map_err(|_| refused(true, "NUL in program path".into()))?,
            argv,
            filter,
            stdout_to_stderr,
        };
        let pid = sys::fork_stopped(&l, saved)
            .map_err(|e| refused(false, format!("cannot start the program: {e}")))?;
        // The child stops itself before exec; seize it there, then let it go on.
        match waitpid(pid, Some(WaitPidFlag::WSTOPPED)) {
            Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
            Ok(WaitStatus::Exited(_, 126)) => {
                return Err(refused(
                    false,
                    "the kernel refused the seccomp filter (CONFIG_SECCOMP_FILTER off, or a \
                     container forbids seccomp): hsmon trace cannot start the program"
                        .into(),
                ));
            }
            other => {
                return Err(refused(
                    false,
                    format!("the program did not start: {other:?}"),
                ));
            }
        }
        if let Err(e) = ptrace::seize(pid, Self::options()) {
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            return Err(refused(
                false,
                if e == Errno::EPERM {
                    eperm_message("cannot trace the program", None)
                } else {
                    format!("cannot trace the program: {e}")
                },
            ));
        }
        let _ = nix::sys::signal::kill(pid, Signal::SIGCONT);
        self.main = Some(pid);
        // The program's own stdin/stdout/stderr are not device streams.
        let mut initial = FdTable::default();
        for fd in 0..3 {
            initial.insert(fd, Slot::Ignored, false);
        }
        let raw = pid.as_raw() as u32;
        self.procs.add_task(raw, raw, None, initial);
        self.tasks.insert(pid, Task::default());
        self.send(&Wire::Started { pid: raw });
        self.send(&Wire::Process {
            pid: raw,
            parent: None,
            exec: Some(program.to_string_lossy().into_owned()),
        });
        self.flush();
        Ok(())
    }

    fn attach(&mut self, pid: u32) -> Result<(), Wire> {
        let task_dir = format!("/proc/{pid}/task");
        let tids: Vec<u32> = match std::fs::read_dir(&task_dir) {
            Ok(d) => d
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect(),
            Err(_) => {
                return Err(refused(
                    true,
                    format!(
                        "no such process: {pid} (nothing in /proc/{pid}; check the pid with ps)"
                    ),
                ));
            }
        };
        let mut stdio = FdTable::default();
        for fd in 0..3 {
            if let Some(LinkTarget::Tty) = read_link(pid, fd).map(|l| fds::classify_link(&l)) {
                stdio.insert(fd, Slot::Ignored, false);
            }
        }
        self.procs.add_task(pid, pid, None, stdio);
        for tid in tids {
            let p = Pid::from_raw(tid as i32);
            match ptrace::seize(p, Self::options() - Options::PTRACE_O_TRACESECCOMP) {
                Ok(()) => {
                    let _ = ptrace::interrupt(p);
                    self.tasks.insert(p, Task::default());
                    self.procs.add_task(tid, pid, None, FdTable::default());
                }
                Err(Errno::ESRCH) => {}
                Err(Errno::EPERM) => {
                    self.start_detach();
                    return Err(refused(
                        false,
                        eperm_message(&format!("cannot attach to {pid}"), Some(pid)),
                    ));
                }
                Err(e) => {
                    self.start_detach();
                    return Err(refused(false, format!("cannot attach to {pid}: {e}")));
                }
            }
        }
        if self.tasks.is_empty() {
            return Err(refused(true, format!("no such process: {pid}")));
        }
        self.main = Some(Pid::from_raw(pid as i32));
        self.send(&Wire::Started { pid });
        self.flush();
        Ok(())
    }

    /// The loop: until every task is gone (or let go). Returns the helper's exit status.
    ///
    /// It blocks in waitpid; a thread watches hsmon's control pipe and, when it closes,
    /// interrupts that waitpid with SIGUSR1 (again every 50 ms until heard: the signal may
    /// land just before the call blocks).
    fn run(&mut self, control: File) -> u8 {
        let gone = Arc::new(AtomicBool::new(false));
        let heard = Arc::new(AtomicBool::new(false));
        if sys::wake_on_sigusr1().is_err() {
            return 3;
        }
        let main = pthread_self();
        {
            let (gone, heard) = (gone.clone(), heard.clone());
            let spawned = std::thread::Builder::new()
                .name("control".into())
                .spawn(move || watch_control(control, main, &gone, &heard));
            if spawned.is_err() {
                return 3;
            }
        }
        loop {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                    Ok(WaitStatus::StillAlive) => break,
                    Ok(st) => self.on_status(st),
                    Err(Errno::EINTR) => {}
                    Err(_) => {
                        // ECHILD: nothing left to wait for.
                        self.tasks.clear();
                        break;
                    }
                }
            }
            if let Some(exit) = self.exit.take() {
                self.send(&exit);
            }
            self.flush();
            if gone.load(Ordering::SeqCst) && !heard.load(Ordering::SeqCst) {
                heard.store(true, Ordering::SeqCst);
                // hsmon quit (or died).
                self.hsmon_gone();
            }
            if self.tasks.is_empty() {
                return 0;
            }
            match waitpid(None, Some(WaitPidFlag::__WALL)) {
                Ok(st) => self.on_status(st),
                Err(Errno::EINTR) => {}
                Err(_) => self.tasks.clear(),
            }
        }
    }

    /// Leaving an attached program: interrupt every task; each is let go at its next stop.
    fn start_detach(&mut self) {
        if self.detaching {
            return;
        }
        self.detaching = true;
        let tids: Vec<Pid> = self.tasks.keys().copied().collect();
        for t in tids {
            let _ = ptrace::interrupt(t);
        }
    }

    fn detach(&mut self, pid: Pid, sig: Option<Signal>) {
        let _ = ptrace::detach(pid, sig);
        self.tasks.remove(&pid);
        if Some(pid) == self.main {
            self.send(&Wire::Detached {
                pid: pid.as_raw() as u32,
            });
        }
    }

    /// Resumes a task: to its syscall-exit when `want_exit` (or always, attached), else
    /// to the next filtered syscall.
    fn resume(&mut self, pid: Pid, want_exit: bool, sig: Option<Signal>) {
        if self.detaching {
            self.detach(pid, sig);
            return;
        }
        let r = if want_exit || !self.launched() {
            ptrace::syscall(pid, sig)
        } else {
            ptrace::cont(pid, sig)
        };
        if r.is_err() {
            // ESRCH: it died meanwhile; its exit status comes through waitpid.
        }
    }

    fn on_status(&mut self, st: WaitStatus) {
        match st {
            WaitStatus::Exited(pid, code) => self.gone(
                pid,
                Wire::Exit {
                    code: Some(code),
                    signal: None,
                },
            ),
            WaitStatus::Signaled(pid, sig, _) => self.gone(
                pid,
                Wire::Exit {
                    code: None,
                    signal: Some(sig as i32),
                },
            ),
            WaitStatus::Stopped(pid, sig) => {
                self.know(pid);
                // A signal for the program: delivered unchanged.
                self.resume(pid, false, Some(sig));
            }
            WaitStatus::PtraceEvent(pid, sig, ev) => {
                self.know(pid);
                self.on_event(pid, sig, ev);
            }
            WaitStatus::PtraceSyscall(pid) => {
                self.know(pid);
                let want = self.on_syscall_stop(pid);
                self.resume(pid, want, None);
            }
            WaitStatus::Continued(_) | WaitStatus::StillAlive => {}
        }
    }

    /// A task seen for the first time (a new thread or process reports before its parent's
    /// fork event, or instead of it): its group and parent from /proc.
    fn know(&mut self, pid: Pid) {
        if self.tasks.contains_key(&pid) {
            return;
        }
        self.tasks.insert(pid, Task::default());
        let raw = pid.as_raw() as u32;
        let (tgid, ppid) = proc_status_ids(raw).unwrap_or((raw, None));
        let new_process = tgid == raw && self.procs.group(raw) == raw;
        self.procs.add_task(
            raw,
            tgid,
            if tgid == raw { ppid } else { Some(tgid) },
            FdTable::default(),
        );
        if new_process && Some(pid) != self.main {
            self.send(&Wire::Process {
                pid: raw,
                parent: ppid,
                exec: None,
            });
        }
    }

    fn gone(&mut self, pid: Pid, exit: Wire) {
        self.tasks.remove(&pid);
        let raw = pid.as_raw() as u32;
        for (fd, ep) in self.procs.remove_task(raw) {
            self.send(&Wire::Close {
                pid: raw,
                fd,
                stream: ep.stream_name(),
            });
        }
        if Some(pid) == self.main {
            self.exit = Some(exit);
        }
    }

    fn on_event(&mut self, pid: Pid, sig: Signal, ev: i32) {
        match ev {
            PTRACE_EVENT_SECCOMP => {
                let want = self.on_syscall_stop(pid);
                self.resume(pid, want, None);
            }
            PTRACE_EVENT_FORK | PTRACE_EVENT_VFORK | PTRACE_EVENT_CLONE => {
                if let Ok(new) = ptrace::getevent(pid) {
                    let child = Pid::from_raw(new as i32);
                    // Registered with its parent's table now, before either runs on.
                    if !self.tasks.contains_key(&child) {
                        let raw = new as u32;
                        let parent_group = self.procs.group(pid.as_raw() as u32);
                        let thread = ev == PTRACE_EVENT_CLONE
                            && proc_status_ids(raw).is_some_and(|(g, _)| g == parent_group);
                        self.tasks.insert(child, Task::default());
                        if thread {
                            self.procs
                                .add_task(raw, parent_group, None, FdTable::default());
                        } else {
                            self.procs
                                .add_task(raw, raw, Some(parent_group), FdTable::default());
                            self.send(&Wire::Process {
                                pid: raw,
                                parent: Some(parent_group),
                                exec: None,
                            });
                        }
                    }
                }
                self.resume(pid, false, None);
            }
            PTRACE_EVENT_EXEC => {
                // A thread that execs takes the leader's pid; its old id never reports again.
                if let Ok(former) = ptrace::getevent(pid) {
                    let former = Pid::from_raw(former as i32);
                    if former != pid {
                        self.tasks.remove(&former);
                    }
                }
                let raw = pid.as_raw() as u32;
                // The exec'ing thread now has the group leader's pid; close-on-exec goes.
                let gone = self.procs.table(raw).exec();
                for (fd, ep) in gone {
                    self.send(&Wire::Close {
                        pid: raw,
                        fd,
                        stream: ep.stream_name(),
                    });
                }
                let exe = read_link_path(&format!("/proc/{raw}/exe"));
                self.send(&Wire::Process {
                    pid: raw,
                    parent: None,
                    exec: exe,
                });
                if let Some(t) = self.tasks.get_mut(&pid) {
                    t.entry = None;
                }
                self.resume(pid, false, None);
            }
            PTRACE_EVENT_STOP => {
                let group_stop = matches!(
                    sig,
                    Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU
                );
                if self.detaching {
                    self.detach(pid, None);
                } else if group_stop {
                    // Stopped by a signal, as it would be untraced: stays stopped.
                    let _ = sys::listen(pid);
                } else {
                    self.resume(pid, false, None);
                }
            }
            _ => self.resume(pid, false, None),
        }
    }

    /// A syscall entry (seccomp or PTRACE_SYSCALL) or exit stop. Returns whether the
    /// syscall-exit stop is wanted.
    fn on_syscall_stop(&mut self, pid: Pid) -> bool {
        let mut buf = [0u64; sys::SYSCALL_INFO_LEN / 8];
        if sys::get_syscall_info(pid, &mut buf).is_err() {
            return false;
        }
        let mut bytes = [0u8; sys::SYSCALL_INFO_LEN];
        for (i, w) in buf.iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        match syscalls::parse_info(&bytes) {
            Some(syscalls::Info::Entry { arch, nr, args }) => self.on_entry(pid, arch, nr, args),
            Some(syscalls::Info::Exit { rval }) => {
                let (entry, arch) = match self.tasks.get_mut(&pid) {
                    Some(t) => (t.entry.take(), t.arch.take()),
                    None => (None, None),
                };
                if let (Some(req), Some(_)) = (entry, arch) {
                    self.on_exit(pid, req, rval);
                }
                false
            }
            None => false,
        }
    }

    fn on_entry(&mut self, pid: Pid, arch: u32, nr: u64, args: [u64; 6]) -> bool {
        if self.out.is_none() {
            return false;
        }
        let Some(arch) = Arch::from_audit(arch) else {
            return false;
        };
        let Some(call) = syscalls::call_of(arch, nr) else {
            return false;
        };
        let Some(req) = syscalls::decode(call, args) else {
            return false;
        };
        let raw = pid.as_raw() as u32;
        let wanted = match &req {
            Request::Io { fd, .. } | Request::Ioctl { fd, .. } => {
                matches!(self.slot(raw, *fd), Slot::Tracked(_))
            }
            Request::Connect { fd, .. } => matches!(self.slot(raw, *fd), Slot::Socket { .. }),
            Request::SendTo { fd, .. } => matches!(
                self.slot(raw, *fd),
                Slot::Tracked(_) | Slot::Socket { datagram: true, .. }
            ),
            Request::Exec | Request::Exit => false,
            _ => true,
        };
        if wanted {
            if let Some(t) = self.tasks.get_mut(&pid) {
                t.entry = Some(req);
                t.arch = Some(arch);
            }
        }
        wanted
    }

    /// What `fd` of task `tid` is; an unknown descriptor (inherited, or opened before an
    /// attach) is looked up in /proc once.
    fn slot(&mut self, tid: u32, fd: i32) -> Slot {
        if let Some(s) = self.procs.table(tid).get(fd) {
            return s.clone();
        }
        let group = self.procs.group(tid);
        let slot = resolve_fd(group, fd);
        self.procs.table(tid).insert(fd, slot.clone(), false);
        if let Slot::Tracked(ep) = &slot {
            self.send(&Wire::Open {
                pid: group,
                fd,
                stream: ep.stream_name(),
            });
        }
        slot
    }

    fn open_stream(&mut self, tid: u32, fd: i32, slot: Slot, cloexec: bool) {
        let group = self.procs.group(tid);
        if let Some(old) = self.procs.table(tid).insert(fd, slot.clone(), cloexec) {
            self.send(&Wire::Close {
                pid: group,
                fd,
                stream: old.stream_name(),
            });
        }
        if let Slot::Tracked(ep) = slot {
            self.send(&Wire::Open {
                pid: group,
                fd,
                stream: ep.stream_name(),
            });
        }
    }

    fn close_stream(&mut self, group: u32, fd: i32, ep: Option<Endpoint>) {
        if let Some(ep) = ep {
            self.lines.remove(&(group, fd));
            self.send(&Wire::Close {
                pid: group,
                fd,
                stream: ep.stream_name(),
            });
        }
    }

    fn on_exit(&mut self, pid: Pid, req: Request, rval: i64) {
        let tid = pid.as_raw() as u32;
        let group = self.procs.group(tid);
        let res = syscalls::result(rval);
        match req {
            Request::Open { path, flags, how } => {
                let Ok(fd) = res else { return };
                let fd = fd as i32;
                let flags = flags.or_else(|| read_u64(pid, how?)).unwrap_or(0);
                let opened = read_string(pid, path);
                let slot = match read_link(group, fd).map(|l| fds::classify_link(&l)) {
                    Some(LinkTarget::Tty) => Slot::Tracked(Endpoint::Tty {
                        path: opened.unwrap_or_else(|| read_link(group, fd).unwrap_or_default()),
                    }),
                    _ => Slot::Ignored,
                };
                self.open_stream(tid, fd, slot, syscalls::open_cloexec(flags));
            }
            Request::Close { fd } => {
                if res.is_ok() {
                    let ep = self.procs.table(tid).close(fd);
                    self.close_stream(group, fd, ep);
                }
            }
            Request::CloseRange {
                first,
                last,
                cloexec_only,
            } => {
                if res.is_ok() {
                    for (fd, ep) in self.procs.table(tid).close_range(first, last, cloexec_only) {
                        self.close_stream(group, fd, Some(ep));
                    }
                }
            }
            Request::Dup { old, cloexec } => {
                let Ok(new) = res else { return };
                let new = new as i32;
                self.slot(tid, old);
                let displaced = self.procs.table(tid).dup(old, new, cloexec);
                self.close_stream(group, new, displaced);
                if let Some(Slot::Tracked(ep)) = self.procs.table(tid).get(new).cloned() {
                    self.send(&Wire::Open {
                        pid: group,
                        fd: new,
                        stream: ep.stream_name(),
                    });
                }
            }
            Request::SetCloexec { fd, on } => {
                if res.is_ok() {
                    self.procs.table(tid).set_cloexec(fd, on);
                }
            }
            Request::Socket { domain, ty } => {
                let Ok(fd) = res else { return };
                let slot = match Family::from_domain(domain) {
                    Some(family) => Slot::Socket {
                        family,
                        datagram: ty & 0xf == 2,
                    },
                    None => Slot::Ignored,
                };
                self.open_stream(tid, fd as i32, slot, syscalls::socket_cloexec(ty));
            }
            Request::Connect { fd, addr, len } => {
                // A non-blocking connect says EINPROGRESS (115) and completes later.
                if !matches!(res, Ok(_) | Err(115)) {
                    return;
                }
                let Slot::Socket { datagram, .. } = self.slot(tid, fd) else {
                    return;
                };
                let bytes = read_mem(pid, addr, (len as usize).min(128)).unwrap_or_default();
                let Some((family, peer)) = fds::parse_sockaddr(&bytes) else {
                    return;
                };
                let ep = match (family, datagram) {
                    (Family::Unix, _) => Endpoint::Unix { path: peer },
                    (_, true) => Endpoint::Udp { peer },
                    (_, false) => Endpoint::Tcp { peer },
                };
                self.open_stream(tid, fd, Slot::Tracked(ep), false);
            }
            Request::Accept { cloexec, .. } => {
                let Ok(fd) = res else { return };
                let slot = resolve_fd(group, fd as i32);
                self.open_stream(tid, fd as i32, slot, cloexec);
            }
            Request::SendTo { fd, buf, addr, len } => {
                let Ok(n) = res else { return };
                if let Slot::Socket {
                    datagram: true,
                    family: Family::Inet | Family::Inet6,
                } = self.slot(tid, fd)
                {
                    let bytes = read_mem(pid, addr, (len as usize).min(128)).unwrap_or_default();
                    if let Some((_, peer)) = fds::parse_sockaddr(&bytes) {
                        self.open_stream(tid, fd, Slot::Tracked(Endpoint::Udp { peer }), false);
                    }
                }
                self.on_io(pid, tid, fd, Direction::Tx, Buffer::Flat(buf), n);
            }
            Request::Io { fd, dir, buf } => {
                let Ok(n) = res else { return };
                self.on_io(pid, tid, fd, dir, buf, n);
            }
            Request::Ioctl { fd, request, arg } => {
                if res.is_err() {
                    return;
                }
                let Slot::Tracked(ep) = self.slot(tid, fd) else {
                    return;
                };
                if !ep.is_tty() {
                    return;
                }
                self.on_tty_ioctl(pid, group, fd, ep.stream_name(), request, arg);
            }
            Request::Exec | Request::Exit => {}
        }
    }

    /// A read or write of `n` bytes on `fd`: its bytes, when `fd` is a stream.
    fn on_io(&mut self, pid: Pid, tid: u32, fd: i32, dir: Direction, buf: Buffer, n: u64) {
        let group = self.procs.group(tid);
        if n == 0 {
            return;
        }
        let Slot::Tracked(ep) = self.slot(tid, fd) else {
            return;
        };
        let want = (n as usize).min(MAX_IO);
        let got = read_buffer(pid, buf, want).unwrap_or_default();
        let stream = ep.stream_name();
        if !got.is_empty() {
            self.send(&Wire::Bytes {
                pid: group,
                fd,
                stream: stream.clone(),
                rx: dir == Direction::Rx,
                hex: hex(&got),
            });
        }
        let lost = n - got.len() as u64;
        if lost > 0 {
            self.send(&Wire::Lost {
                pid: group,
                fd,
                stream,
                bytes: lost,
            });
        }
    }

    fn on_tty_ioctl(&mut self, pid: Pid, group: u32, fd: i32, stream: String, nr: u32, arg: u64) {
        let Some(req) = termios::request(nr, arg) else {
            return;
        };
        let (mut settings, mut modem) = self.lines.get(&(group, fd)).copied().unwrap_or_default();
        match req {
            TtyRequest::Set { len } => {
                let bytes = read_mem(pid, arg, len).unwrap_or_default();
                match termios::settings(&bytes, len) {
                    Ok(s) => settings = Some(s),
                    Err(_) => return,
                }
            }
            TtyRequest::ModemSet | TtyRequest::ModemBis | TtyRequest::ModemBic => {
                let Some(b) = read_mem(pid, arg, 4).filter(|b| b.len() == 4) else {
                    return;
                };
                let bits = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                modem = termios::modem_after(req, bits, modem);
            }
            TtyRequest::Break => {
                self.send(&Wire::Break {
                    pid: group,
                    fd,
                    stream,
                });
                return;
            }
            TtyRequest::Get { len } => {
                let bytes = read_mem(pid, arg, len).unwrap_or_default();
                let (Some(asked), Ok(kept)) = (settings, termios::settings(&bytes, len)) else {
                    return;
                };
                let pty = read_link(group, fd).is_some_and(|l| l.starts_with("/dev/pts/"));
                let told = self.told.get(&(group, fd)) == Some(&asked);
                if let (Some(text), false) = (termios::not_kept(&asked, &kept, pty), told) {
                    self.told.insert((group, fd), asked);
                    self.send(&Wire::NotKept {
                        pid: group,
                        fd,
                        stream,
                        asked: asked.to_string(),
                        text,
                    });
                }
                return;
            }
            TtyRequest::Flush { queue } => {
                self.send(&Wire::Flush {
                    pid: group,
                    fd,
                    stream,
                    queue: termios::flush_queue(queue).to_string(),
                });
                return;
            }
            TtyRequest::BreakOff | TtyRequest::Drain => return,
        }
        self.lines.insert((group, fd), (settings, modem));
        // Modem lines alone (before any settings) have no settings record to ride on.
        if let Some(s) = settings {
            self.send(&Wire::Settings {
                pid: group,
                fd,
                stream,
                baud: s.baud.bps(),
                format: s.format.to_string(),
                flow: s.flow.label().to_string(),
                dtr: modem.dtr,
                rts: modem.rts,
            });
        }
    }
}

/// Waits for hsmon's control pipe to close, then wakes the tracer thread until it has heard.
fn watch_control(mut control: File, main: Pthread, gone: &AtomicBool, heard: &AtomicBool) {
    let mut b = [0u8; 64];
    loop {
        match control.read(&mut b) {
            Ok(n) if n > 0 => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    gone.store(true, Ordering::SeqCst);
    while !heard.load(Ordering::SeqCst) {
        let _ = pthread_kill(main, Signal::SIGUSR1);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The seccomp filter for this machine: SECCOMP_RET_TRACE for the watched calls, ALLOW for
/// everything else. seccompiler (rust-vmm, pure Rust) compiles it; its prologue kills a
/// process whose syscall comes from another architecture (a 32-bit `int 0x80` in a 64-bit
/// program), which would change the program's behaviour, so that one return is made ALLOW.
fn seccomp_filter() -> Result<Vec<libc::sock_filter>, String> {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let (arch, target) = match Arch::native() {
        Some(Arch::X86_64) => (Arch::X86_64, TargetArch::x86_64),
        Some(Arch::Aarch64) => (Arch::Aarch64, TargetArch::aarch64),
        None => return Err("hsmon trace runs on x86-64 and aarch64 Linux only".into()),
    };
    let rules = syscalls::watched_numbers(arch)
        .into_iter()
        .map(|n| (i64::from(n), Vec::new()))
        .collect();
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Trace(0), target)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let mut prog: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e| format!("seccomp filter: {e:?}"))?;
    // [load arch, jeq native +1, ret KILL_PROCESS, ...]: return ALLOW instead.
    match prog.get_mut(2) {
        Some(ins) if ins.code == 0x06 && ins.k == libc::SECCOMP_RET_KILL_PROCESS => {
            ins.k = libc::SECCOMP_RET_ALLOW;
        }
        _ => return Err("seccomp filter: unexpected prologue from seccompiler".into()),
    }
    Ok(prog
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// The program's path: as given when it has a slash, else the first match on PATH.
fn resolve_program(program: &OsString) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let p = std::path::Path::new(program);
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.as_bytes().contains(&b'/') {
        return runnable(p).then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(p))
        .find(|c| runnable(c))
}

/// Tgid and PPid of a task from /proc/TID/status.
fn proc_status_ids(tid: u32) -> Option<(u32, Option<u32>)> {
    let text = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    Some((field("Tgid:")?, field("PPid:")))
}

fn read_link(pid: u32, fd: i32) -> Option<String> {
    read_link_path(&format!("/proc/{pid}/fd/{fd}"))
}

fn read_link_path(p: &str) -> Option<String> {
    std::fs::read_link(p)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// What an fd found already open is: a tty, a socket (peer from /proc/PID/net), or ignored.
fn resolve_fd(pid: u32, fd: i32) -> Slot {
    let Some(link) = read_link(pid, fd) else {
        return Slot::Ignored;
    };
    match fds::classify_link(&link) {
        LinkTarget::Tty => Slot::Tracked(Endpoint::Tty { path: link }),
        LinkTarget::Socket { inode } => {
            let net = |name: &str| std::fs::read_to_string(format!("/proc/{pid}/net/{name}"));
            for (name, v6, udp) in [
                ("tcp", false, false),
                ("tcp6", true, false),
                ("udp", false, true),
                ("udp6", true, true),
            ] {
                if let Some(peer) = net(name)
                    .ok()
                    .and_then(|t| fds::peer_in_proc_net(&t, inode, v6))
                {
                    return Slot::Tracked(if udp {
                        Endpoint::Udp { peer }
                    } else {
                        Endpoint::Tcp { peer }
                    });
                }
            }
            if let Some(path) = net("unix")
                .ok()
                .and_then(|t| fds::path_in_proc_unix(&t, inode))
                .filter(|p| !p.is_empty())
            {
                return Slot::Tracked(Endpoint::Unix { path });
            }
            Slot::Ignored
        }
        LinkTarget::Other => Slot::Ignored,
    }
}

/// `len` bytes of the tracee's memory at `addr` (fewer if part is unmapped).
fn read_mem(pid: Pid, addr: u64, len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let remote = [RemoteIoVec {
            base: (addr as usize).wrapping_add(done),
            len: len - done,
        }];
        let mut local = [std::io::IoSliceMut::new(&mut buf[done..])];
        match process_vm_readv(pid, &mut local, &remote) {
            Ok(0) | Err(_) => break,
            Ok(n) => done += n,
        }
    }
    buf.truncate(done);
    Some(buf)
}

fn read_u64(pid: Pid, addr: u64) -> Option<u64> {
    let b = read_mem(pid, addr, 8)?;
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string of the tracee (a path), read page by page.
fn read_string(pid: Pid, addr: u64) -> Option<String> {
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < 4096 {
        let to_page_end = 4096 - (at as usize % 4096);
        let chunk = read_mem(pid, at, to_page_end)?;
        if chunk.is_empty() {
            break;
        }
        if let Some(end) = chunk.iter().position(|&c| c == 0) {
            out.extend_from_slice(&chunk[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
        at += chunk.len() as u64;
    }
    (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// The first `n` bytes of a read/write buffer (flat, iovec array, or msghdr).
fn read_buffer(pid: Pid, buf: Buffer, n: usize) -> Option<Vec<u8>> {
    let (iov_addr, count) = match buf {
        Buffer::Flat(addr) => return read_mem(pid, addr, n),
        Buffer::Iov { addr, count } => (addr, count),
        Buffer::Msg(addr) => syscalls::parse_msghdr(&read_mem(pid, addr, 56)?)?,
    };
    let raw = read_mem(pid, iov_addr, (count.min(MAX_IOV) * 16) as usize)?;
    let mut out = Vec::with_capacity(n);
    for (base, len) in syscalls::parse_iovecs(&raw) {
        if out.len() >= n {
            break;
        }
        let take = (len as usize).min(n - out.len());
        let part = read_mem(pid, base, take)?;
        let short = part.len() < take;
        out.extend_from_slice(&part);
        if short {
            break;
        }
    }
    Some(out)
}

fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn helper_args_round_trip() {
        for t in [
            Target::Attach { pid: 42 },
            Target::Launch {
                program: "stm32flash".into(),
                args: vec!["-b".into(), "57600".into(), "--".into()],
                stdout_to_stderr: true,
            },
            Target::Launch {
                program: "curl".into(),
                args: vec![],
                stdout_to_stderr: false,
            },
        ] {
            let a = helper_args(5, 6, &t);
            assert_eq!(parse_helper_args(&a), Some((5, 6, t)));
        }
    }

    #[test]
    fn filter_builds_and_allows_other_architectures() {
        let f = seccomp_filter().unwrap();
        assert_eq!(f[2].k, libc::SECCOMP_RET_ALLOW);
        assert!(f.iter().any(|i| i.k == libc::SECCOMP_RET_TRACE));
    }
}
