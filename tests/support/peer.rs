//! Simulated peers for the built-in serial and TCP profiles, good and faulty: pure models that
//! take what the host sent and say what the device answers. The tests play them over a pty or
//! a socket; the faults are the ones users meet (not in boot mode, an echo, an extra 0x68
//! frame, a half-duplex line, a wrong baud rate, silence). The card profile's peer is the
//! simulated card (`hsmon::sim::card`). Test support only: nothing in hsmon itself uses them.
//!
//! Every byte value comes from the public protocol documents; where a wrong baud rate or parity is modelled,
//! the bytes are what the reference's UART simulation says the host reads (simulated).

/// What a faulty device does instead of answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers as the profile expects.
    None,
    /// Prints text: the application runs, not the bootloader (ESP: the normal boot log).
    NotInBootMode,
    /// Sends each request back unchanged and nothing else (a MediaTek device past its BROM
    /// handshake echoes A0).
    Echo,
    /// A half-duplex line: the request comes back first, then the right answer.
    HalfDuplexEcho,
    /// M-Bus: answers SND_NKE with an RSP_UD long frame (a late answer) instead of E5.
    LongFrame,
    /// STM32: NACK 1F to 7F (the bootloader was already synchronised).
    Nack,
    /// M-Bus: E5 sent at 2400 Bd and read at 9600 (simulated).
    WrongBaud,
    /// Never answers (wrong parity or rate on the device side, no power, wrong port).
    Silent,
    /// TCP: closes the connection on the first request (a TLS IEC 104 server given plaintext).
    Closes,
}

impl Fault {
    /// Every fault with its name (for `hsmon demo`-style choosers and test names).
    pub const ALL: [(&'static str, Fault); 9] = [
        ("good", Fault::None),
        ("not-in-boot-mode", Fault::NotInBootMode),
        ("echo", Fault::Echo),
        ("half-duplex-echo", Fault::HalfDuplexEcho),
        ("long-frame", Fault::LongFrame),
        ("nack", Fault::Nack),
        ("wrong-baud", Fault::WrongBaud),
        ("silent", Fault::Silent),
        ("closes", Fault::Closes),
    ];

    pub fn from_name(name: &str) -> Option<Fault> {
        Fault::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// What the device does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Bytes(Vec<u8>),
    /// Close the connection (TCP).
    Close,
}

/// M-Bus RSP_UD from libmbus `test/test-frames/manual_frame7.hex` (EN 13757-2).
pub const MBUS_RSP_UD: [u8; 27] = [
    0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, 0x13,
    0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
];

/// STM32 GET reply: ACK, N = 11, bootloader 3.1, 11 commands of AN3155, ACK (ST AN3155).
pub const STM32_GET_REPLY: [u8; 15] = [
    0x79, 0x0B, 0x31, 0x00, 0x01, 0x02, 0x11, 0x21, 0x31, 0x43, 0x63, 0x73, 0x82, 0x92, 0x79,
];

/// The ESP ROM's answer to SYNC (Espressif's esptool serial-protocol docs); the ROM sends it several times.
pub const ESP_SYNC_REPLY: [u8; 14] = [
    0xC0, 0x01, 0x08, 0x04, 0x00, 0x07, 0x07, 0x12, 0x20, 0x00, 0x00, 0x00, 0x00, 0xC0,
];

/// What an ESP32 prints after a normal (not download) reset (Espressif's esptool serial-protocol docs).
pub const ESP_BOOT_LOG: &[u8] = b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n";

/// An application's console: what "not in the bootloader" prints (0x68 'h' first).
pub const APP_TEXT: &[u8] = b"hello world\r\n";

/// DL/T 645 read-address reply of meter 000000000001: 4 FE, 68, address LSB first, 68,
/// C = 93, L = 6, the address + 33 each, CS, 16 (DL/T 645-2007).
pub const DLT645_ADDRESS_REPLY: [u8; 22] = [
    0xFE, 0xFE, 0xFE, 0xFE, 0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x93, 0x06, 0x34, 0x33,
    0x33, 0x33, 0x33, 0x33, 0x9D, 0x16,
];

/// A simulated device for one profile.
#[derive(Debug, Clone)]
pub struct Peer {
    kind: Kind,
    fault: Fault,
    inbox: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MtkBrom,
    Stm32,
    Esp32,
    Mbus,
    Iec104,
    Dlt645,
}

impl Peer {
    /// The peer for a built-in profile, or None if there is none (cards: `sim::card`) or the
    /// fault means nothing for that device.
    pub fn new(profile: &str, fault: Fault) -> Option<Peer> {
        let kind = match profile {
            "mtk-brom" => Kind::MtkBrom,
            "stm32" => Kind::Stm32,
            "esp32" => Kind::Esp32,
            "mbus" => Kind::Mbus,
            "iec104" => Kind::Iec104,
            "dlt645" => Kind::Dlt645,
            _ => return None,
        };
        let fits = match fault {
            Fault::None | Fault::Silent | Fault::Echo => true,
            Fault::NotInBootMode => matches!(kind, Kind::MtkBrom | Kind::Stm32 | Kind::Esp32),
            Fault::HalfDuplexEcho => matches!(kind, Kind::Mbus | Kind::Dlt645),
            Fault::LongFrame | Fault::WrongBaud => kind == Kind::Mbus,
            Fault::Nack => kind == Kind::Stm32,
            Fault::Closes => kind == Kind::Iec104,
        };
        fits.then_some(Peer {
            kind,
            fault,
            inbox: Vec::new(),
        })
    }

    /// Takes bytes from the host; returns what the device sends back, in order.
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Vec<Reply> {
        self.inbox.extend_from_slice(bytes);
        // Bound what an odd host can make the model hold.
        if self.inbox.len() > 4096 {
            let cut = self.inbox.len() - 4096;
            self.inbox.drain(..cut);
        }
        let mut out = Vec::new();
        while let Some((request, used)) = self.next_request() {
            self.inbox.drain(..used);
            if let Some(r) = self.answer(&request) {
                out.push(r);
            }
        }
        out
    }

    /// The next complete request at the start of the inbox, and how many bytes it took
    /// (skipped garbage included).
    fn next_request(&self) -> Option<(Vec<u8>, usize)> {
        let b = &self.inbox;
        let first = *b.first()?;
        match self.kind {
            Kind::MtkBrom => Some((vec![first], 1)),
            Kind::Stm32 => match b.as_slice() {
                [0x7F, ..] => Some((vec![0x7F], 1)),
                [op, c, ..] if op ^ c == 0xFF => Some((vec![*op, *c], 2)),
                [_, _, ..] => Some((Vec::new(), 1)),
                _ => None,
            },
            Kind::Esp32 => {
                if first != 0xC0 {
                    return Some((Vec::new(), 1));
                }
                let end = b.iter().skip(1).position(|&x| x == 0xC0)? + 2;
                Some((b[..end].to_vec(), end))
            }
            Kind::Mbus => match first {
                0x10 => (b.len() >= 5).then(|| (b[..5].to_vec(), 5)),
                0x68 => {
                    let l = usize::from(*b.get(1)?);
                    (b.len() >= l + 6).then(|| (b[..l + 6].to_vec(), l + 6))
                }
                _ => Some((Vec::new(), 1)),
            },
            Kind::Iec104 => {
                if first != 0x68 {
                    return Some((Vec::new(), 1));
                }
                let l = usize::from(*b.get(1)?);
                (b.len() >= l + 2).then(|| (b[..l + 2].to_vec(), l + 2))
            }
            Kind::Dlt645 => {
                let fe = b.iter().take_while(|&&x| x == 0xFE).count();
                let body = &b[fe..];
                match body.first() {
                    None => None,
                    Some(0x68) => {
                        let l = usize::from(*body.get(9)?);
                        let n = fe + l + 12;
                        (b.len() >= n).then(|| (b[..n].to_vec(), n))
                    }
                    Some(_) => Some((Vec::new(), fe + 1)),
                }
            }
        }
    }

    fn answer(&self, req: &[u8]) -> Option<Reply> {
        if req.is_empty() || self.fault == Fault::Silent {
            return None;
        }
        let bytes = |b: &[u8]| Some(Reply::Bytes(b.to_vec()));
        match self.fault {
            Fault::Echo => return bytes(req),
            Fault::Closes => return Some(Reply::Close),
            Fault::NotInBootMode if self.kind == Kind::Esp32 => return bytes(ESP_BOOT_LOG),
            Fault::NotInBootMode => return bytes(APP_TEXT),
            _ => {}
        }
        let good = match self.kind {
            // Each start byte answered with its complement (mtkclient (github.com/bkerler/mtkclient)).
            Kind::MtkBrom => vec![!req[0]],
            Kind::Stm32 => match req {
                [0x7F] if self.fault == Fault::Nack => vec![0x1F],
                [0x7F] => vec![0x79],
                [0x00, 0xFF] => STM32_GET_REPLY.to_vec(),
                _ => vec![0x1F],
            },
            Kind::Esp32 => match req.get(2) {
                // Command 08 (SYNC): the reply, eight times (esptool reads 7 more, §5.2).
                Some(0x08) => ESP_SYNC_REPLY.repeat(8),
                _ => return None,
            },
            Kind::Mbus => match req {
                [0x10, 0x40, ..] if self.fault == Fault::LongFrame => MBUS_RSP_UD.to_vec(),
                // EN 13757-2 (simulated): E5 sent at 2400, read at 9600.
                [0x10, 0x40, ..] if self.fault == Fault::WrongBaud => vec![0x78, 0x80],
                [0x10, 0x40, ..] => vec![0xE5],
                [0x10, 0x5B | 0x7B, ..] => MBUS_RSP_UD.to_vec(),
                _ => return None,
            },
            Kind::Iec104 => match req {
                // STARTDT act → con, TESTFR act → con (IEC 60870-5-104).
                [0x68, 0x04, 0x07, 0, 0, 0] => vec![0x68, 0x04, 0x0B, 0, 0, 0],
                [0x68, 0x04, 0x43, 0, 0, 0] => vec![0x68, 0x04, 0x83, 0, 0, 0],
                _ => return None,
            },
            Kind::Dlt645 => {
                let fe = req.iter().take_while(|&&x| x == 0xFE).count();
                match req.get(fe + 8) {
                    Some(0x13) => DLT645_ADDRESS_REPLY.to_vec(),
                    _ => return None,
                }
            }
        };
        if self.fault == Fault::HalfDuplexEcho {
            let mut both = req.to_vec();
            both.extend_from_slice(&good);
            return bytes(&both);
        }
        bytes(&good)
    }
}
