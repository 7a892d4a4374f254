//! Pure decoding of the tty ioctls a traced program makes: what it set (TCSETS*, TCSETS2*
//! with BOTHER rates), its modem lines (TIOCMSET/TIOCMBIS/TIOCMBIC), breaks and flushes.
//!
//! Layouts and numbers from Linux `include/uapi/asm-generic/termbits.h`, `termbits-common.h`
//! and `ioctls.h` (the same on x86-64 and aarch64): the kernel's `struct termios` is four
//! u32 flags, `c_line`, 19 control characters (36 bytes); `struct termios2` adds
//! `c_ispeed`, `c_ospeed` (44 bytes). glibc's `tcsetattr` calls TCSETS/TCSETSW/TCSETSF.

use crate::event::{
    Baud, DataBits, FlowControl, FrameFormat, LineSettings, ModemLines, Parity, StopBits,
};

pub const TCGETS: u32 = 0x5401;
pub const TCSETS: u32 = 0x5402;
pub const TCSETSW: u32 = 0x5403;
pub const TCSETSF: u32 = 0x5404;
pub const TCSBRK: u32 = 0x5409;
pub const TCFLSH: u32 = 0x540B;
pub const TIOCMGET: u32 = 0x5415;
pub const TIOCMBIS: u32 = 0x5416;
pub const TIOCMBIC: u32 = 0x5417;
pub const TIOCMSET: u32 = 0x5418;
pub const TCSBRKP: u32 = 0x5425;
pub const TIOCSBRK: u32 = 0x5427;
pub const TIOCCBRK: u32 = 0x5428;
/// `_IOR('T', 0x2A, struct termios2)`.
pub const TCGETS2: u32 = 0x802C_542A;
/// `_IOW('T', 0x2B, struct termios2)` and the W/F variants.
pub const TCSETS2: u32 = 0x402C_542B;
pub const TCSETSW2: u32 = 0x402C_542C;
pub const TCSETSF2: u32 = 0x402C_542D;

pub const TIOCM_DTR: u32 = 0x002;
pub const TIOCM_RTS: u32 = 0x004;

/// Bytes of the kernel's `struct termios` and `struct termios2`.
pub const TERMIOS_LEN: usize = 36;
pub const TERMIOS2_LEN: usize = 44;

const CBAUD: u32 = 0o010017;
const BOTHER: u32 = 0o010000;
const CSIZE: u32 = 0o000060;
const CSTOPB: u32 = 0o000100;
const PARENB: u32 = 0o000400;
const PARODD: u32 = 0o001000;
const CMSPAR: u32 = 0o10000000000;
const CRTSCTS: u32 = 0o20000000000;
const IXON: u32 = 0o002000;
const IXOFF: u32 = 0o010000;

/// What a tty ioctl asks; the tracer reads `len` bytes at the argument where it needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyRequest {
    /// Set the line from a `struct termios` (36 bytes) or `termios2` (44 bytes) at `arg`.
    Set {
        len: usize,
    },
    /// Modem lines from the int at `arg`: replace, set these bits, clear these bits.
    ModemSet,
    ModemBis,
    ModemBic,
    /// TCSBRK with arg 0 (a break of 0.25-0.5 s), TCSBRKP, TIOCSBRK: a break.
    Break,
    /// TIOCCBRK: the break ends.
    BreakOff,
    /// TCFLSH: 0 input, 1 output, 2 both.
    Flush {
        queue: u64,
    },
    /// TCSBRK with a non-zero arg: tcdrain, nothing to show.
    Drain,
    /// TCGETS/TCGETS2: what the port has now (read after the call), `len` bytes at `arg`.
    Get {
        len: usize,
    },
}

/// The request behind an ioctl number on a tty; None for the rest (TCGETS, TIOCGWINSZ, ...).
pub fn request(nr: u32, arg: u64) -> Option<TtyRequest> {
    Some(match nr {
        TCSETS | TCSETSW | TCSETSF => TtyRequest::Set { len: TERMIOS_LEN },
        TCSETS2 | TCSETSW2 | TCSETSF2 => TtyRequest::Set { len: TERMIOS2_LEN },
        TIOCMSET => TtyRequest::ModemSet,
        TIOCMBIS => TtyRequest::ModemBis,
        TIOCMBIC => TtyRequest::ModemBic,
        TCSBRK if arg == 0 => TtyRequest::Break,
        TCSBRK => TtyRequest::Drain,
        TCSBRKP | TIOCSBRK => TtyRequest::Break,
        TIOCCBRK => TtyRequest::BreakOff,
        TCFLSH => TtyRequest::Flush { queue: arg },
        TCGETS => TtyRequest::Get { len: TERMIOS_LEN },
        TCGETS2 => TtyRequest::Get { len: TERMIOS2_LEN },
        _ => return None,
    })
}

/// Why a termios could not become line settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TermiosError {
    #[error("termios of {got} bytes, need {need}")]
    Short { need: usize, got: usize },
    /// B0: the program hangs up (drops DTR); no rate to show.
    #[error("baud B0: hang up")]
    HangUp,
    #[error("baud code {0:#o} is not a Linux rate")]
    UnknownRate(u32),
    #[error("{0}")]
    Rate(#[from] crate::event::SettingsError),
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        w.copy_from_slice(s);
    }
    u32::from_ne_bytes(w)
}

/// The rate of a CBAUD code (B50 .. B4000000).
fn rate_of(code: u32) -> Option<u32> {
    Some(match code {
        0o000001 => 50,
        0o000002 => 75,
        0o000003 => 110,
        0o000004 => 134,
        0o000005 => 150,
        0o000006 => 200,
        0o000007 => 300,
        0o000010 => 600,
        0o000011 => 1200,
        0o000012 => 1800,
        0o000013 => 2400,
        0o000014 => 4800,
        0o000015 => 9600,
        0o000016 => 19200,
        0o000017 => 38400,
        0o010001 => 57600,
        0o010002 => 115200,
        0o010003 => 230400,
        0o010004 => 460800,
        0o010005 => 500000,
        0o010006 => 576000,
        0o010007 => 921600,
        0o010010 => 1000000,
        0o010011 => 1152000,
        0o010012 => 1500000,
        0o010013 => 2000000,
        0o010014 => 2500000,
        0o010015 => 3000000,
        0o010016 => 3500000,
        0o010017 => 4000000,
        _ => return None,
    })
}

/// The line settings a `struct termios` / `termios2` asks for. A BOTHER rate comes from
/// `c_ospeed` (termios2 only; a plain termios with BOTHER is an unknown rate).
pub fn settings(bytes: &[u8], len: usize) -> Result<LineSettings, TermiosError> {
    if bytes.len() < len {
        return Err(TermiosError::Short {
            need: len,
            got: bytes.len(),
        });
    }
    let iflag = u32_at(bytes, 0);
    let cflag = u32_at(bytes, 8);
    let code = cflag & CBAUD;
    let bps = if code == 0 {
        return Err(TermiosError::HangUp);
    } else if code == BOTHER && len >= TERMIOS2_LEN {
        u32_at(bytes, 40)
    } else {
        rate_of(code).ok_or(TermiosError::UnknownRate(code))?
    };
    let data_bits = match cflag & CSIZE {
        0o000000 => DataBits::Five,
        0o000020 => DataBits::Six,
        0o000040 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let parity = match (
        cflag & PARENB != 0,
        cflag & CMSPAR != 0,
        cflag & PARODD != 0,
    ) {
        (false, _, _) => Parity::None,
        (true, false, false) => Parity::Even,
        (true, false, true) => Parity::Odd,
        (true, true, true) => Parity::Mark,
        (true, true, false) => Parity::Space,
    };
    let stop_bits = if cflag & CSTOPB != 0 {
        StopBits::Two
    } else {
        StopBits::One
    };
    let flow = if cflag & CRTSCTS != 0 {
        FlowControl::Hardware
    } else if iflag & (IXON | IXOFF) != 0 {
        FlowControl::Software
    } else {
        FlowControl::None
    };
    Ok(LineSettings {
        baud: Baud::new(bps)?,
        format: FrameFormat {
            data_bits,
            parity,
            stop_bits,
        },
        flow,
    })
}

/// TCFLSH's queue argument in words (TCIFLUSH 0, TCOFLUSH 1, TCIOFLUSH 2).
pub fn flush_queue(arg: u64) -> &'static str {
    match arg {
        0 => "input",
        1 => "output",
        _ => "both",
    }
}

/// When the port did not keep what the program set: the words for it, in the program's
/// terms (None when it kept it). A pseudo-terminal has no parity or character size: Linux's
/// pty driver forces CS8 and clears PARENB (drivers/tty/pty.c, `pty_set_termios`).
pub fn not_kept(asked: &LineSettings, kept: &LineSettings, pty: bool) -> Option<String> {
    if asked == kept {
        return None;
    }
    let mut text = format!(
        "the program set {} {} flow {}; the port kept {} {} flow {}",
        asked.baud,
        asked.format,
        asked.flow.label(),
        kept.baud,
        kept.format,
        kept.flow.label()
    );
    if pty && asked.format != kept.format {
        text.push_str(
            ": a pseudo-terminal has no parity or character size (Linux forces CS8, no parity), \
             so a program that checks its settings (stm32flash: \"Failed to set terminal flags\") \
             gives up; test it on a real UART adapter",
        );
    }
    Some(text)
}

/// The modem lines after a TIOCMSET/TIOCMBIS/TIOCMBIC with `bits`, from `before`.
pub fn modem_after(req: TtyRequest, bits: u32, before: ModemLines) -> ModemLines {
    let dtr = bits & TIOCM_DTR != 0;
    let rts = bits & TIOCM_RTS != 0;
    match req {
        TtyRequest::ModemSet => ModemLines {
            dtr: Some(dtr),
            rts: Some(rts),
        },
        TtyRequest::ModemBis => ModemLines {
            dtr: if dtr { Some(true) } else { before.dtr },
            rts: if rts { Some(true) } else { before.rts },
        },
        TtyRequest::ModemBic => ModemLines {
            dtr: if dtr { Some(false) } else { before.dtr },
            rts: if rts { Some(false) } else { before.rts },
        },
        _ => before,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A kernel termios with these flags (and termios2 speeds when `len` is 44).
    fn termios(iflag: u32, cflag: u32, ospeed: u32, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[0..4].copy_from_slice(&iflag.to_ne_bytes());
        b[8..12].copy_from_slice(&cflag.to_ne_bytes());
        if len == TERMIOS2_LEN {
            b[36..40].copy_from_slice(&ospeed.to_ne_bytes());
            b[40..44].copy_from_slice(&ospeed.to_ne_bytes());
        }
        b
    }

    const CS8: u32 = 0o000060;
    const CS7: u32 = 0o000040;
    const CREAD: u32 = 0o000200;
    const CLOCAL: u32 = 0o004000;

    #[test]
    fn stm32flash_57600_8e1() {
        // stm32flash's serial_posix.c: B57600 | CS8 | PARENB | CLOCAL | CREAD.
        let t = termios(0, 0o010001 | CS8 | PARENB | CLOCAL | CREAD, 0, TERMIOS_LEN);
        let s = settings(&t, TERMIOS_LEN).unwrap();
        assert_eq!(s.baud.bps(), 57600);
        assert_eq!(s.format.to_string(), "8E1");
        assert_eq!(s.flow, FlowControl::None);
    }

    #[test]
    fn formats_flow_and_rates() {
        let t = termios(
            IXON,
            0o000015 | CS7 | PARENB | PARODD | CSTOPB,
            0,
            TERMIOS_LEN,
        );
        let s = settings(&t, TERMIOS_LEN).unwrap();
        assert_eq!(
            (s.baud.bps(), s.format.to_string(), s.flow),
            (9600, "7O2".to_string(), FlowControl::Software)
        );
        let t = termios(0, 0o010002 | CS8 | CRTSCTS, 0, TERMIOS_LEN);
        assert_eq!(
            settings(&t, TERMIOS_LEN).unwrap().flow,
            FlowControl::Hardware
        );
        let t = termios(0, 0o010017 | CS8 | PARENB | CMSPAR | PARODD, 0, TERMIOS_LEN);
        let s = settings(&t, TERMIOS_LEN).unwrap();
        assert_eq!(
            (s.baud.bps(), s.format.to_string()),
            (4_000_000, "8M1".into())
        );
    }

    #[test]
    fn bother_rate_from_termios2() {
        // pyserial sets custom rates with TCSETS2, BOTHER and c_ospeed (serialposix.py).
        let t = termios(0, BOTHER | CS8, 74880, TERMIOS2_LEN);
        assert_eq!(settings(&t, TERMIOS2_LEN).unwrap().baud.bps(), 74880);
        let t = termios(0, BOTHER | CS8, 0, TERMIOS_LEN);
        assert!(matches!(
            settings(&t, TERMIOS_LEN),
            Err(TermiosError::UnknownRate(_))
        ));
    }

    #[test]
    fn hangup_and_short_are_errors() {
        let t = termios(0, CS8, 0, TERMIOS_LEN);
        assert_eq!(settings(&t, TERMIOS_LEN), Err(TermiosError::HangUp));
        assert!(matches!(
            settings(&t[..10], TERMIOS_LEN),
            Err(TermiosError::Short { .. })
        ));
    }

    #[test]
    fn ioctl_numbers_match_libc() {
        assert_eq!(TCSETS, libc::TCSETS as u32);
        assert_eq!(TCSETSF, libc::TCSETSF as u32);
        assert_eq!(TIOCMBIS, libc::TIOCMBIS as u32);
        assert_eq!(TCSETS2, libc::TCSETS2 as u32);
        assert_eq!(TCFLSH, libc::TCFLSH as u32);
        assert_eq!(TIOCSBRK, libc::TIOCSBRK as u32);
    }

    #[test]
    fn a_pty_dropping_parity_is_said_in_the_programs_terms() {
        let asked = settings(
            &termios(0, 0o010001 | CS8 | PARENB, 0, TERMIOS_LEN),
            TERMIOS_LEN,
        )
        .unwrap();
        let kept = settings(&termios(0, 0o010001 | CS8, 0, TERMIOS_LEN), TERMIOS_LEN).unwrap();
        assert_eq!(not_kept(&asked, &asked, true), None);
        let text = not_kept(&asked, &kept, true).unwrap();
        assert!(text.starts_with("the program set 57600 8E1 flow none; the port kept 57600 8N1"));
        assert!(text.contains("pseudo-terminal"));
        assert!(!not_kept(&asked, &kept, false).unwrap().contains("pseudo"));
    }

    #[test]
    fn modem_lines_follow_set_bis_bic() {
        let none = ModemLines::default();
        let m = modem_after(TtyRequest::ModemBis, TIOCM_DTR, none);
        assert_eq!((m.dtr, m.rts), (Some(true), None));
        let m = modem_after(TtyRequest::ModemBic, TIOCM_DTR | TIOCM_RTS, m);
        assert_eq!((m.dtr, m.rts), (Some(false), Some(false)));
        let m = modem_after(TtyRequest::ModemSet, TIOCM_RTS, m);
        assert_eq!((m.dtr, m.rts), (Some(false), Some(true)));
        assert_eq!(request(TCSBRK, 0), Some(TtyRequest::Break));
        assert_eq!(request(TCSBRK, 1), Some(TtyRequest::Drain));
        assert_eq!(
            request(TCGETS, 0),
            Some(TtyRequest::Get { len: TERMIOS_LEN })
        );
        assert_eq!(request(0x5413, 0), None); // TIOCGWINSZ
    }
}
