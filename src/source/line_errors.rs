//! Line error counters from the UART driver (Linux TIOCGICOUNT): framing, overrun, parity,
//! break and buffer-overrun counts since the port was opened. The one place hsmon uses
//! `unsafe`: the ioctl has no safe wrapper in nix or serialport.
//!
//! Audit: the ioctl writes exactly one `SerialICounter` (the kernel's
//! `struct serial_icounter_struct`, 20 ints) into memory we own and pass by `&mut`; the fd
//! is borrowed from an open port for the duration of the call. A driver without counters
//! (a pty, many USB bridges) answers ENOTTY/EINVAL, which we report as "not available".
#![allow(unsafe_code)]

use std::os::unix::io::RawFd;

/// The kernel's `struct serial_icounter_struct` (include/uapi/linux/serial.h).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SerialICounter {
    pub cts: i32,
    pub dsr: i32,
    pub rng: i32,
    pub dcd: i32,
    pub rx: i32,
    pub tx: i32,
    pub frame: i32,
    pub overrun: i32,
    pub parity: i32,
    pub brk: i32,
    pub buf_overrun: i32,
    pub reserved: [i32; 9],
}

#[cfg(target_os = "linux")]
nix::ioctl_read_bad!(tiocgicount, nix::libc::TIOCGICOUNT, SerialICounter);

/// Reads the driver's counters; None where the driver keeps none.
#[cfg(target_os = "linux")]
pub fn read(fd: RawFd) -> Option<crate::event::LineErrorCounts> {
    let mut c = SerialICounter::default();
    // SAFETY: see the module comment; `c` is a valid, exclusively borrowed out-parameter of
    // the exact layout the kernel writes.
    let r = unsafe { tiocgicount(fd, &mut c) };
    r.ok()?;
    let n = |v: i32| u64::try_from(v).unwrap_or(0);
    Some(crate::event::LineErrorCounts {
        frame: n(c.frame),
        overrun: n(c.overrun),
        parity: n(c.parity),
        brk: n(c.brk),
        buf_overrun: n(c.buf_overrun),
    })
}

#[cfg(not(target_os = "linux"))]
pub fn read(_fd: RawFd) -> Option<crate::event::LineErrorCounts> {
    None
}
