//! Pure decoding of the system calls the tracer watches, per architecture (x86-64 and
//! aarch64): numbers to calls, raw arguments to typed requests. No ptrace here: the tracer
//! hands in what `PTRACE_GET_SYSCALL_INFO` reported (architecture, number, six arguments).
//!
//! Numbers: x86-64 from Linux `arch/x86/entry/syscalls/syscall_64.tbl`, aarch64 from the
//! generic table `include/uapi/asm-generic/unistd.h` (aarch64 has no `open`, `dup2`).

use crate::event::Direction;

/// The architectures the tracer decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// `AUDIT_ARCH_X86_64` (linux/audit.h): EM_X86_64 | 64-bit | little-endian.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_AARCH64`: EM_AARCH64 | 64-bit | little-endian.
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;

impl Arch {
    /// The architecture of a syscall-info `arch` field; None for others (a 32-bit call in a
    /// 64-bit program: not decoded).
    pub fn from_audit(arch: u32) -> Option<Arch> {
        match arch {
            AUDIT_ARCH_X86_64 => Some(Arch::X86_64),
            AUDIT_ARCH_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The architecture hsmon was built for, if it is one the tracer decodes.
    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }
}

/// The calls the tracer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Open,
    Openat,
    Openat2,
    Close,
    CloseRange,
    Dup,
    Dup2,
    Dup3,
    Fcntl,
    Read,
    Write,
    Readv,
    Writev,
    Pread64,
    Pwrite64,
    Preadv,
    Pwritev,
    Recvfrom,
    Recvmsg,
    Sendto,
    Sendmsg,
    Socket,
    Connect,
    Accept,
    Accept4,
    Ioctl,
    Execve,
    Execveat,
    Exit,
    ExitGroup,
}

/// (call, x86-64 number, aarch64 number).
const TABLE: &[(Call, Option<u32>, Option<u32>)] = &[
    (Call::Read, Some(0), Some(63)),
    (Call::Write, Some(1), Some(64)),
    (Call::Open, Some(2), None),
    (Call::Close, Some(3), Some(57)),
    (Call::Ioctl, Some(16), Some(29)),
    (Call::Pread64, Some(17), Some(67)),
    (Call::Pwrite64, Some(18), Some(68)),
    (Call::Readv, Some(19), Some(65)),
    (Call::Writev, Some(20), Some(66)),
    (Call::Dup, Some(32), Some(23)),
    (Call::Dup2, Some(33), None),
    (Call::Socket, Some(41), Some(198)),
    (Call::Connect, Some(42), Some(203)),
    (Call::Accept, Some(43), Some(202)),
    (Call::Sendto, Some(44), Some(206)),
    (Call::Recvfrom, Some(45), Some(207)),
    (Call::Sendmsg, Some(46), Some(211)),
    (Call::Recvmsg, Some(47), Some(212)),
    (Call::Execve, Some(59), Some(221)),
    (Call::Exit, Some(60), Some(93)),
    (Call::Fcntl, Some(72), Some(25)),
    (Call::ExitGroup, Some(231), Some(94)),
    (Call::Openat, Some(257), Some(56)),
    (Call::Accept4, Some(288), Some(242)),
    (Call::Dup3, Some(292), Some(24)),
    (Call::Preadv, Some(295), Some(69)),
    (Call::Pwritev, Some(296), Some(70)),
    (Call::Execveat, Some(322), Some(281)),
    (Call::CloseRange, Some(436), Some(436)),
    (Call::Openat2, Some(437), Some(437)),
];

/// The call behind number `nr` on `arch`.
pub fn call_of(arch: Arch, nr: u64) -> Option<Call> {
    TABLE
        .iter()
        .find(|(_, x, a)| {
            let n = match arch {
                Arch::X86_64 => *x,
                Arch::Aarch64 => *a,
            };
            n.is_some_and(|n| u64::from(n) == nr)
        })
        .map(|(c, _, _)| *c)
}

/// Every number the seccomp filter must send to the tracer on `arch`.
pub fn watched_numbers(arch: Arch) -> Vec<u32> {
    TABLE
        .iter()
        .filter_map(|(_, x, a)| match arch {
            Arch::X86_64 => *x,
            Arch::Aarch64 => *a,
        })
        .collect()
}

/// Where a read or write keeps its bytes in the program's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Buffer {
    /// One buffer at this address.
    Flat(u64),
    /// An array of `count` `struct iovec` (16 bytes each: base, length).
    Iov { addr: u64, count: u64 },
    /// A `struct msghdr` (sendmsg/recvmsg): its iovec array at offset 16, count at 24.
    Msg(u64),
}

/// A decoded request, as the program made it (before the result is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// open/openat/openat2: the path's address and the flags (openat2: read from `how`).
    Open {
        path: u64,
        flags: Option<u64>,
        how: Option<u64>,
    },
    Close {
        fd: i32,
    },
    /// close_range(first, last, flags): CLOSE_RANGE_CLOEXEC (4) only marks them.
    CloseRange {
        first: u32,
        last: u32,
        cloexec_only: bool,
    },
    /// dup/dup2/dup3/fcntl(F_DUPFD*): the result is the new descriptor.
    Dup {
        old: i32,
        cloexec: bool,
    },
    /// fcntl(F_SETFD): the close-on-exec flag of `fd`.
    SetCloexec {
        fd: i32,
        on: bool,
    },
    /// Bytes moved: Rx the program read, Tx it wrote. The result is the length.
    Io {
        fd: i32,
        dir: Direction,
        buf: Buffer,
    },
    Socket {
        domain: u32,
        ty: u32,
    },
    /// connect: the peer's `struct sockaddr`.
    Connect {
        fd: i32,
        addr: u64,
        len: u32,
    },
    /// sendto with a destination address: bytes written, and the peer.
    SendTo {
        fd: i32,
        buf: u64,
        addr: u64,
        len: u32,
    },
    /// accept/accept4: the result is the connection; the peer is read from /proc later.
    Accept {
        fd: i32,
        cloexec: bool,
    },
    Ioctl {
        fd: i32,
        request: u32,
        arg: u64,
    },
    Exec,
    Exit,
}

const O_CLOEXEC: u64 = 0o2_000_000;
const SOCK_CLOEXEC: u64 = 0o2_000_000;
const F_DUPFD: u64 = 0;
const F_SETFD: u64 = 2;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;

/// The request of a call with its six raw arguments; None for calls that matter neither to
/// the fd table nor to the bytes (fcntl(F_GETFL), ...).
pub fn decode(call: Call, a: [u64; 6]) -> Option<Request> {
    let fd = |v: u64| v as i32;
    Some(match call {
        Call::Open => Request::Open {
            path: a[0],
            flags: Some(a[1]),
            how: None,
        },
        Call::Openat => Request::Open {
            path: a[1],
            flags: Some(a[2]),
            how: None,
        },
        Call::Openat2 => Request::Open {
            path: a[1],
            flags: None,
            how: Some(a[2]),
        },
        Call::Close => Request::Close { fd: fd(a[0]) },
        Call::CloseRange => Request::CloseRange {
            first: a[0] as u32,
            last: a[1] as u32,
            cloexec_only: a[2] & 4 != 0,
        },
        Call::Dup | Call::Dup2 => Request::Dup {
            old: fd(a[0]),
            cloexec: false,
        },
        Call::Dup3 => Request::Dup {
            old: fd(a[0]),
            cloexec: a[2] & O_CLOEXEC != 0,
        },
        Call::Fcntl => match a[1] {
            F_DUPFD => Request::Dup {
                old: fd(a[0]),
                cloexec: false,
            },
            F_DUPFD_CLOEXEC => Request::Dup {
                old: fd(a[0]),
                cloexec: true,
            },
            F_SETFD => Request::SetCloexec {
                fd: fd(a[0]),
                on: a[2] & FD_CLOEXEC != 0,
            },
            _ => return None,
        },
        Call::Read | Call::Pread64 | Call::Recvfrom => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Rx,
            buf: Buffer::Flat(a[1]),
        },
        Call::Write | Call::Pwrite64 => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Tx,
            buf: Buffer::Flat(a[1]),
        },
        // sendto on a connected socket has no address; one with an address (a datagram on
        // an unconnected socket) names the peer: the stream takes the first one.
        Call::Sendto if a[4] != 0 => Request::SendTo {
            fd: fd(a[0]),
            buf: a[1],
            addr: a[4],
            len: a[5] as u32,
        },
        Call::Sendto => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Tx,
            buf: Buffer::Flat(a[1]),
        },
        Call::Readv | Call::Preadv => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Rx,
            buf: Buffer::Iov {
                addr: a[1],
                count: a[2],
            },
        },
        Call::Writev | Call::Pwritev => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Tx,
            buf: Buffer::Iov {
                addr: a[1],
                count: a[2],
            },
        },
        Call::Recvmsg => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Rx,
            buf: Buffer::Msg(a[1]),
        },
        Call::Sendmsg => Request::Io {
            fd: fd(a[0]),
            dir: Direction::Tx,
            buf: Buffer::Msg(a[1]),
        },
        Call::Socket => Request::Socket {
            domain: a[0] as u32,
            ty: a[1] as u32,
        },
        Call::Connect => Request::Connect {
            fd: fd(a[0]),
            addr: a[1],
            len: a[2] as u32,
        },
        Call::Accept => Request::Accept {
            fd: fd(a[0]),
            cloexec: false,
        },
        Call::Accept4 => Request::Accept {
            fd: fd(a[0]),
            cloexec: a[3] & SOCK_CLOEXEC != 0,
        },
        // The request number is an unsigned int in the kernel (upper bits ignored).
        Call::Ioctl => Request::Ioctl {
            fd: fd(a[0]),
            request: a[1] as u32,
            arg: a[2],
        },
        Call::Execve | Call::Execveat => Request::Exec,
        Call::Exit | Call::ExitGroup => Request::Exit,
    })
}

/// Whether a socket() type asks for close-on-exec.
pub fn socket_cloexec(ty: u32) -> bool {
    u64::from(ty) & SOCK_CLOEXEC != 0
}

/// Whether open flags ask for close-on-exec.
pub fn open_cloexec(flags: u64) -> bool {
    flags & O_CLOEXEC != 0
}

/// A syscall's return value: Ok(value) or the errno it failed with (-4095..=-1).
pub fn result(rval: i64) -> Result<u64, i32> {
    if (-4095..0).contains(&rval) {
        Err((-rval) as i32)
    } else {
        Ok(rval as u64)
    }
}

/// A `struct ptrace_syscall_info` (linux/ptrace.h): what PTRACE_GET_SYSCALL_INFO reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Info {
    /// A syscall-entry or seccomp stop: the audit architecture, number and arguments.
    Entry { arch: u32, nr: u64, args: [u64; 6] },
    /// A syscall-exit stop: the return value (negative errno on failure).
    Exit { rval: i64 },
}

/// Parses the kernel's `struct ptrace_syscall_info`: op u8 at 0, arch u32 at 4, then
/// (after instruction and stack pointers) at 24 either `nr`, `args[6]` (entry = 1,
/// seccomp = 3) or `rval` (exit = 2). None for op 0 (not a syscall stop) or a short buffer.
pub fn parse_info(b: &[u8]) -> Option<Info> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let arch = u32::from_ne_bytes(b.get(4..8)?.try_into().ok()?);
    match *b.first()? {
        1 | 3 => {
            let mut args = [0u64; 6];
            for (i, a) in args.iter_mut().enumerate() {
                *a = u64_at(32 + i * 8)?;
            }
            Some(Info::Entry {
                arch,
                nr: u64_at(24)?,
                args,
            })
        }
        2 => Some(Info::Exit {
            rval: u64_at(24)? as i64,
        }),
        _ => None,
    }
}

/// One `struct iovec` (64-bit): base, length.
pub fn parse_iovecs(bytes: &[u8]) -> Vec<(u64, u64)> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut b = [0u8; 8];
            let mut l = [0u8; 8];
            b.copy_from_slice(&c[..8]);
            l.copy_from_slice(&c[8..]);
            (u64::from_ne_bytes(b), u64::from_ne_bytes(l))
        })
        .collect()
}

/// A `struct msghdr` (64-bit): the iovec array's address and count (offsets 16 and 24).
pub fn parse_msghdr(bytes: &[u8]) -> Option<(u64, u64)> {
    let word = |at: usize| -> Option<u64> {
        let s = bytes.get(at..at + 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Some(u64::from_ne_bytes(b))
    };
    Some((word(16)?, word(24)?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn numbers_agree_with_libc_on_this_machine() {
        // libc's SYS_* are the kernel's numbers for the architecture we were built for.
        let arch = Arch::native().unwrap();
        let pairs: &[(Call, i64)] = &[
            (Call::Read, libc::SYS_read),
            (Call::Write, libc::SYS_write),
            (Call::Openat, libc::SYS_openat),
            (Call::Close, libc::SYS_close),
            (Call::Ioctl, libc::SYS_ioctl),
            (Call::Writev, libc::SYS_writev),
            (Call::Dup3, libc::SYS_dup3),
            (Call::Fcntl, libc::SYS_fcntl),
            (Call::Socket, libc::SYS_socket),
            (Call::Connect, libc::SYS_connect),
            (Call::Sendto, libc::SYS_sendto),
            (Call::Recvfrom, libc::SYS_recvfrom),
            (Call::Sendmsg, libc::SYS_sendmsg),
            (Call::Recvmsg, libc::SYS_recvmsg),
            (Call::Accept4, libc::SYS_accept4),
            (Call::Execve, libc::SYS_execve),
            (Call::ExitGroup, libc::SYS_exit_group),
            (Call::Openat2, libc::SYS_openat2),
            (Call::CloseRange, libc::SYS_close_range),
        ];
        for (call, nr) in pairs {
            assert_eq!(call_of(arch, *nr as u64), Some(*call), "{call:?}");
        }
    }

    #[test]
    fn aarch64_has_no_open_or_dup2() {
        assert_eq!(call_of(Arch::Aarch64, 63), Some(Call::Read));
        assert_eq!(call_of(Arch::Aarch64, 56), Some(Call::Openat));
        assert_eq!(call_of(Arch::Aarch64, 2), None);
        assert_eq!(call_of(Arch::X86_64, 2), Some(Call::Open));
        assert!(!watched_numbers(Arch::Aarch64).contains(&33));
    }

    #[test]
    fn requests_decode() {
        assert_eq!(
            decode(Call::Openat, [u64::MAX - 99, 0x1000, 0o2_000_002, 0, 0, 0]),
            Some(Request::Open {
                path: 0x1000,
                flags: Some(0o2_000_002),
                how: None
            })
        );
        assert_eq!(
            decode(Call::Fcntl, [5, F_DUPFD_CLOEXEC, 10, 0, 0, 0]),
            Some(Request::Dup {
                old: 5,
                cloexec: true
            })
        );
        assert_eq!(decode(Call::Fcntl, [5, 3, 0, 0, 0, 0]), None);
        assert_eq!(
            decode(Call::Sendto, [4, 0x1000, 3, 0, 0x2000, 16]),
            Some(Request::SendTo {
                fd: 4,
                buf: 0x1000,
                addr: 0x2000,
                len: 16
            })
        );
        assert!(matches!(
            decode(Call::Sendto, [4, 0x1000, 3, 0, 0, 0]),
            Some(Request::Io { .. })
        ));
        assert_eq!(
            decode(Call::Ioctl, [3, 0xFFFF_FFFF_0000_5402, 0x2000, 0, 0, 0]),
            Some(Request::Ioctl {
                fd: 3,
                request: 0x5402,
                arg: 0x2000
            })
        );
    }

    #[test]
    fn syscall_info_parses() {
        let mut b = vec![0u8; 88];
        b[0] = 3;
        b[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_ne_bytes());
        b[24..32].copy_from_slice(&1u64.to_ne_bytes());
        b[32..40].copy_from_slice(&7u64.to_ne_bytes());
        assert_eq!(
            parse_info(&b),
            Some(Info::Entry {
                arch: AUDIT_ARCH_X86_64,
                nr: 1,
                args: [7, 0, 0, 0, 0, 0]
            })
        );
        b[0] = 2;
        b[24..32].copy_from_slice(&(-11i64).to_ne_bytes());
        assert_eq!(parse_info(&b), Some(Info::Exit { rval: -11 }));
        b[0] = 0;
        assert_eq!(parse_info(&b), None);
        assert_eq!(parse_info(&b[..20]), None);
    }

    #[test]
    fn results_split_errors() {
        assert_eq!(result(5), Ok(5));
        assert_eq!(result(-11), Err(11));
        assert_eq!(result(-4096), Ok((-4096i64) as u64));
    }

    #[test]
    fn iovecs_and_msghdr_parse() {
        let mut b = Vec::new();
        for v in [0x1000u64, 4, 0x2000, 8] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(parse_iovecs(&b), vec![(0x1000, 4), (0x2000, 8)]);
        let mut m = vec![0u8; 56];
        m[16..24].copy_from_slice(&0x3000u64.to_ne_bytes());
        m[24..32].copy_from_slice(&2u64.to_ne_bytes());
        assert_eq!(parse_msghdr(&m), Some((0x3000, 2)));
        assert_eq!(parse_msghdr(&m[..20]), None);
    }
}
