//! The `tour` demo device: a gadget that prints a boot log, then talks M-Bus, IEC 60870-5-104
//! and DL/T 645 — every frame opening with 0x68 — and answers what the user sends.
//! Frames are the worked examples of EN 13757-2, §2.2 and §3.2.
//!
//! It obeys Commands like a real port: a settings change is acknowledged with a
//! `LineSettings` event, DTR/RTS toggle, a break is confirmed, and transmitted bytes come
//! back as `Tx` (and, for some, an answer).

use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::event::{
    Baud, Command, ConnectionState, Event, FrameFormat, LineErrorCounts, LineSettings, ModemLines,
};
use crate::source::{EventSink, SourceHandle, channels};
use crate::uart_line::{Noise, Receiver, Sender, UartLink};

/// One step of the device's script.
#[derive(Debug, Clone, Copy)]
enum Say {
    Text(&'static str),
    Bytes(&'static [u8]),
}

const BOOT_LOG: &[&str] = &[
    "\r\nhsmon demo board v1.2 (simulated)\r\n",
    "boot: checking flash... ok\r\n",
    "boot: hello, this is the boot log: every 'h' is a 0x68 byte\r\n",
    "net: link down\r\n",
    "app: starting meter gateway at 2400 8E1 (M-Bus), IEC 104 on :2404\r\n",
];

/// The traffic it repeats after booting, with the pause before each.
const CYCLE: &[(u64, Say)] = &[
    // M-Bus RSP_UD long frame (libmbus manual_frame7.hex).
    (
        700,
        Say::Bytes(&[
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ]),
    ),
    (500, Say::Text("meter: RSP_UD from address 2\r\n")),
    // IEC 104 STARTDT con, then an I-frame (GI con).
    (600, Say::Bytes(&[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00])),
    (
        300,
        Say::Bytes(&[
            0x68, 0x0E, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00,
            0x00, 0x14,
        ]),
    ),
    // DL/T 645 normal reply: 001234.56 kWh.
    (
        600,
        Say::Bytes(&[
            0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33,
            0x89, 0x67, 0x45, 0x33, 0x9F, 0x16,
        ]),
    ),
    (800, Say::Text("app: heartbeat ok\r\n")),
];

/// The names `hsmon demo` accepts.
pub const SCENARIOS: &[(&str, &str)] = &[
    (
        "tour",
        "a board printing a boot log, then M-Bus, IEC 104 and DL/T 645 frames (each opens with 0x68); it answers M-Bus SND_NKE with E5 and echoes text",
    ),
    (
        "wrong-baud",
        "the same board talking at 9600 8N1 through a bit-level model of the wire, while the monitor starts at 115200: turn the baud (- / [) until the garbage becomes text",
    ),
    (
        "noisy",
        "the board at the right rate on a noisy line: glitches add phantom bytes (FF, FE, … 00 by their width, never 0x68) and framing errors",
    ),
    (
        "card",
        "a simulated smart card in a simulated reader, with a demo APDU script: 61XX and GET RESPONSE, 6882 on a secure-messaging CLA, 6CXX and the right Le, and a reset by another application mid-script (n steps, c runs, z replays)",
    ),
    (
        "drift",
        "the board's clock runs 4 % fast (an RC oscillator): at 115200 most text reads, some characters break with framing errors; type the estimated rate (b 119808) to read it cleanly",
    ),
];

/// The drift scenario's clock error: past the ~3.5 % a 16x-oversampling receiver tolerates at
/// 8N1 (reference §6.1), so some characters break, few enough that text still shows through.
const DRIFT_PPM: f64 = 40_000.0;

/// The wire between the simulated board and the monitor's UART, for scenarios that model it.
struct Wire {
    link: UartLink,
    totals: LineErrorCounts,
}

fn wire_for(scenario: &str, monitor: &LineSettings) -> Option<Option<Wire>> {
    let receiver = Receiver::new(monitor.baud, monitor.format);
    let nine_six = Baud::new(9600).ok()?;
    match scenario {
        "tour" => Some(None),
        "wrong-baud" => Some(Some(Wire {
            link: UartLink::new(Sender::new(nine_six, FrameFormat::default()), receiver),
            totals: LineErrorCounts::default(),
        })),
        "drift" => Some(Some(Wire {
            link: UartLink::new(
                Sender::new(monitor.baud, monitor.format).with_clock_ppm(DRIFT_PPM),
                receiver,
            ),
            totals: LineErrorCounts::default(),
        })),
        "noisy" => Some(Some(Wire {
            link: UartLink::new(Sender::new(monitor.baud, monitor.format), receiver)
                .with_noise(Noise::in_bit_times(8.0, 0.75, 9.0, monitor.baud, 0x68)),
            totals: LineErrorCounts::default(),
        })),
        _ => None,
    }
}

/// Starts the demo device.
pub fn spawn(scenario: &str, clock: Clock) -> Option<SourceHandle> {
    let wire = wire_for(scenario, &LineSettings::default())?;
    let (etx, erx, ctx, crx) = channels();
    tokio::spawn(async move {
        let mut dev = TourDevice {
            sink: EventSink::new(etx, clock),
            commands: crx,
            settings: LineSettings::default(),
            modem: ModemLines {
                dtr: Some(true),
                rts: Some(true),
            },
            wire,
        };
        let _ = dev.run().await;
    });
    Some(SourceHandle {
        events: erx,
        commands: ctx,
        name: format!("demo: {scenario} (simulated board)"),
        streams: Vec::new(),
    })
}

struct TourDevice {
    sink: EventSink,
    commands: mpsc::Receiver<Command>,
    settings: LineSettings,
    modem: ModemLines,
    wire: Option<Wire>,
}

/// The session ended.
struct Stop;

impl TourDevice {
    async fn run(&mut self) -> Result<(), Stop> {
        self.emit(Event::Connection(ConnectionState::Up))?;
        self.ack_settings()?;
        // The simulated UART keeps error counters, as a real one does (all zero here).
        self.emit(Event::LineErrors(Some(Default::default())))?;
        for line in BOOT_LOG {
            self.pause(250).await?;
            self.say(Say::Text(line))?;
        }
        loop {
            for (ms, say) in CYCLE {
                self.pause(*ms).await?;
                self.say(*say)?;
            }
        }
    }

    fn emit(&mut self, ev: Event) -> Result<(), Stop> {
        self.sink.emit(ev).map_err(|_| Stop)
    }

    fn ack_settings(&mut self) -> Result<(), Stop> {
        self.emit(Event::LineSettings {
            settings: self.settings,
            modem: self.modem,
        })
    }

    fn say(&mut self, s: Say) -> Result<(), Stop> {
        let bytes = match s {
            Say::Text(t) => t.as_bytes().to_vec(),
            Say::Bytes(b) => b.to_vec(),
        };
        let Some(wire) = self.wire.as_mut() else {
            return self.emit(Event::Rx(bytes));
        };
        // Through the wire: what the monitor's UART makes of it at its own settings.
        let now = self.sink.clock().now().as_secs_f64();
        let start = now.max(wire.link.line_free_at());
        let end = wire.link.send(start, &bytes);
        let got = wire
            .link
            .receive_until(end + 20.0 / f64::from(self.settings.baud.bps()));
        let before = wire.totals;
        wire.totals.frame += got.counts.frame;
        wire.totals.parity += got.counts.parity;
        wire.totals.brk += got.counts.brk;
        let changed = wire.totals != before;
        let counts = wire.totals;
        let rx = got.bytes();
        if !rx.is_empty() {
            self.emit(Event::Rx(rx))?;
        }
        if changed {
            self.emit(Event::LineErrors(Some(counts)))?;
        }
        Ok(())
    }

    /// The monitor's UART follows the settings the user chose.
    fn retune(&mut self) {
        if let Some(wire) = self.wire.as_mut() {
            let now = self.sink.clock().now().as_secs_f64();
            wire.link.set_receiver(
                Receiver::new(self.settings.baud, self.settings.format),
                now.max(wire.link.line_free_at()),
            );
        }
    }

    /// Waits `ms` while obeying commands.
    async fn pause(&mut self, ms: u64) -> Result<(), Stop> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Ok(()),
                cmd = self.commands.recv() => self.obey(cmd).await?,
            }
        }
    }

    async fn obey(&mut self, cmd: Option<Command>) -> Result<(), Stop> {
        match cmd {
            None | Some(Command::Shutdown) => Err(Stop),
            Some(Command::SetBaud(b)) => {
                self.settings.baud = b;
                self.retune();
                self.ack_settings()
            }
            Some(Command::SetFormat(f)) => {
                self.settings.format = f;
                self.retune();
                self.ack_settings()
            }
            Some(Command::SetFlow(f)) => {
                self.settings.flow = f;
                self.ack_settings()
            }
            Some(Command::SetDtr(on)) => {
                self.modem.dtr = Some(on);
                self.ack_settings()
            }
            Some(Command::SetRts(on)) => {
                self.modem.rts = Some(on);
                self.ack_settings()
            }
            Some(Command::SendBreak(d)) => {
                tokio::time::sleep(d).await;
                self.emit(Event::BreakSent)
            }
            Some(Command::Transmit(bytes)) => {
                self.emit(Event::Tx(bytes.clone()))?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                if let Some(answer) = answer_to(&bytes) {
                    self.emit(Event::Rx(answer))?;
                }
                Ok(())
            }
            Some(
                cmd @ (Command::SendApdu { .. }
                | Command::Reconnect(_)
                | Command::Transaction(_)
                | Command::Replay(_)),
            ) => self.emit(Event::CommandFailed {
                command: cmd.describe(),
                reason: "this simulated device is a serial line, not a card".to_string(),
            }),
        }
    }
}

/// What the board answers: E5 to an M-Bus SND_NKE (`10 40 A CS 16`), an echo line to text.
fn answer_to(sent: &[u8]) -> Option<Vec<u8>> {
    if let [0x10, 0x40, a, cs, 0x16] = sent {
        if 0x40u8.wrapping_add(*a) == *cs {
            return Some(vec![0xE5]);
        }
    }
    if !sent.is_empty()
        && sent
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        let text = String::from_utf8_lossy(sent);
        return Some(format!("you typed: {}\r\n", text.trim_end()).into_bytes());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_snd_nke_with_e5() {
        assert_eq!(answer_to(&[0x10, 0x40, 0x01, 0x41, 0x16]), Some(vec![0xE5]));
        assert_eq!(
            answer_to(&[0x10, 0x40, 0x01, 0x42, 0x16]),
            None,
            "bad checksum"
        );
        assert_eq!(answer_to(b"AT\r"), Some(b"you typed: AT\r\n".to_vec()));
    }

    #[test]
    fn mbus_frame_checksum_is_right() {
        let Say::Bytes(f) = CYCLE[0].1 else {
            panic!("first step is the M-Bus frame")
        };
        let l = f[1] as usize;
        let sum = f[4..4 + l].iter().fold(0u8, |a, b| a.wrapping_add(*b));
        assert_eq!(sum, f[4 + l]);
        assert_eq!(f.len(), l + 6);
    }
}
