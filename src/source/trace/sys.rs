//! The tracer's only `unsafe` code, audited block by block: starting the program under the
//! seccomp filter (fork, then only async-signal-safe calls until exec), the two ptrace
//! requests nix 0.26 lacks (PTRACE_GET_SYSCALL_INFO, PTRACE_LISTEN), taking over the pipe
//! descriptors hsmon handed the helper, and ignoring terminal signals in the helper.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::os::fd::FromRawFd;

use nix::errno::Errno;
use nix::unistd::Pid;

/// `PTRACE_GET_SYSCALL_INFO` (linux/ptrace.h, Linux 5.3).
const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
/// `PTRACE_LISTEN` (Linux 3.4): leave a group-stopped tracee stopped, but report changes.
const PTRACE_LISTEN: libc::c_uint = 0x4208;

/// Size of `struct ptrace_syscall_info` this code reads (the kernel writes at most this).
pub const SYSCALL_INFO_LEN: usize = 88;

/// Fills `buf` with the stopped tracee's `struct ptrace_syscall_info`; returns the bytes the
/// kernel has (may exceed the buffer; only `buf.len()` were written).
pub fn get_syscall_info(pid: Pid, buf: &mut [u64; SYSCALL_INFO_LEN / 8]) -> nix::Result<usize> {
    // SAFETY: the kernel writes at most `addr` (= the buffer's size) bytes to `data`, which
    // points at a live, writable, 8-aligned buffer of exactly that size.
    let r = unsafe {
        libc::ptrace(
            PTRACE_GET_SYSCALL_INFO,
            pid.as_raw(),
            SYSCALL_INFO_LEN as *mut libc::c_void,
            buf.as_mut_ptr().cast::<libc::c_void>(),
        )
    };
    Errno::result(r).map(|n| n as usize)
}

/// PTRACE_LISTEN: a tracee in group-stop stays stopped (as it would untraced) while further
/// events (SIGCONT, a kill) are still reported.
pub fn listen(pid: Pid) -> nix::Result<()> {
    // SAFETY: PTRACE_LISTEN takes no pointers (addr and data are ignored and null).
    let r = unsafe {
        libc::ptrace(
            PTRACE_LISTEN,
            pid.as_raw(),
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    Errno::result(r).map(drop)
}

/// Takes ownership of descriptor `fd` that hsmon passed to the helper and marks it
/// close-on-exec, so the traced program never inherits it.
pub fn take_fd(fd: i32) -> nix::Result<File> {
    use nix::fcntl::{F_GETFD, F_SETFD, FdFlag, fcntl};
    fcntl(fd, F_GETFD)?;
    fcntl(fd, F_SETFD(FdFlag::FD_CLOEXEC))?;
    // SAFETY: `fd` is open (F_GETFD succeeded) and nothing else in this process owns it: it
    // was inherited from hsmon for exactly this use and is named once on the command line.
    Ok(unsafe { File::from_raw_fd(fd) })
}

extern "C" fn wake(_: libc::c_int) {}

/// SIGUSR1 gets a handler that does nothing, installed without SA_RESTART: it only makes the
/// tracer's blocking waitpid return EINTR (the helper's control thread sends it).
pub fn wake_on_sigusr1() -> nix::Result<()> {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    let act = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler is async-signal-safe (it does nothing); it replaces SIGUSR1's
    // default in the helper only (the program's exec resets handlers to the default).
    unsafe { sigaction(Signal::SIGUSR1, &act) }.map(drop)
}

/// Signal dispositions the helper changed, to put back in the program before exec.
pub struct SavedSignals {
    actions: Vec<(libc::c_int, libc::sigaction)>,
    mask: libc::sigset_t,
}

/// The helper ignores the terminal's SIGINT, SIGQUIT and SIGHUP (Ctrl-C meant for hsmon and
/// the program must not kill the tracer that keeps the program's filter served). Returns
/// what to restore in the program (with the signal mask hsmon had).
pub fn helper_signals() -> nix::Result<SavedSignals> {
    let mut actions = Vec::new();
    for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP] {
        // SAFETY: zeroed sigaction structs are valid (SIG_DFL, empty mask); sigaction reads
        // `new` and writes `old`, both live locals.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = libc::SIG_IGN;
            let mut old: libc::sigaction = std::mem::zeroed();
            Errno::result(libc::sigaction(sig, &new, &mut old))?;
            actions.push((sig, old));
        }
    }
    // SAFETY: sigprocmask with a null `set` only writes the current mask into a live local.
    let mask = unsafe {
        let mut old: libc::sigset_t = std::mem::zeroed();
        Errno::result(libc::sigprocmask(
            libc::SIG_BLOCK,
            std::ptr::null(),
            &mut old,
        ))?;
        old
    };
    Ok(SavedSignals { actions, mask })
}

/// Everything the child needs, prepared before fork (the child must not allocate).
pub struct Launch {
    pub program: CString,
    pub argv: Vec<CString>,
    pub filter: Vec<libc::sock_filter>,
    /// Headless: the program's stdout goes to hsmon's stderr (hsmon's stdout has records).
    pub stdout_to_stderr: bool,
}

/// Forks the program: the child restores the signals, installs the seccomp filter, stops
/// itself (SIGSTOP) for the tracer to seize it, then execs. Returns its pid.
pub fn fork_stopped(l: &Launch, saved: &SavedSignals) -> nix::Result<Pid> {
    let mut ptrs: Vec<*const libc::c_char> = l.argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let prog = libc::sock_fprog {
        len: l.filter.len() as libc::c_ushort,
        filter: l.filter.as_ptr().cast_mut(),
    };
    // SAFETY: fork in a single-threaded helper. In the child only async-signal-safe calls
    // follow (sigaction, sigprocmask, signal, dup2, prctl, seccomp, kill, getpid, execv, _exit) on
    // data built before the fork (`ptrs`, `prog`, `saved`), then exec or _exit: no
    // allocation, no lock, no return into Rust code.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(Errno::last());
        }
        if pid > 0 {
            return Ok(Pid::from_raw(pid));
        }
        for (sig, act) in &saved.actions {
            libc::sigaction(*sig, act, std::ptr::null_mut());
        }
        libc::sigprocmask(libc::SIG_SETMASK, &saved.mask, std::ptr::null_mut());
        // Rust's runtime ignores SIGPIPE in the helper; an ignored signal stays ignored across
        // exec, so put it back as std's Command does for every child it spawns.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        if l.stdout_to_stderr {
            libc::dup2(2, 1);
        }
        // Without CAP_SYS_ADMIN a filter needs no_new_privs; try without it first so a
        // root-run program keeps its setuid behaviour.
        let seccomp = |p: &libc::sock_fprog| {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                p as *const libc::sock_fprog,
            )
        };
        if seccomp(&prog) != 0 {
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            if seccomp(&prog) != 0 {
                libc::_exit(126);
            }
        }
        libc::kill(libc::getpid(), libc::SIGSTOP);
        libc::execv(l.program.as_ptr(), ptrs.as_ptr());
        libc::_exit(127)
    }
}
