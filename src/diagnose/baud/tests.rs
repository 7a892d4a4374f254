//! Tests across scoring, the passive estimator and the active scan: generated corpora through
//! the UART line model, the reference signatures, the scan state machine.
#![allow(clippy::unwrap_used)]

use crate::event::{Baud, FrameFormat, LineErrorCounts};
use crate::uart_line::{Receiver, Sender};

use super::passive::{Mismatch, PassiveEstimate, PassiveEstimator, SettingVerdict};
use super::scan::{ActiveScan, Dwell, ScanAction};
use super::scoring::{
    COMMON_RATES, Candidate, Evidence, Ranked, Score, checked_frames, frame_net_bits, score,
    sort_ranking, text_stats,
};

use crate::uart_line::{Noise, SplitMix64, UartLink};
use std::collections::HashMap;

fn baud(b: u32) -> Baud {
    Baud::new(b).unwrap()
}

fn fmt(s: &str) -> FrameFormat {
    s.parse().unwrap()
}

fn errs(frame: u64, parity: u64, brk: u64) -> LineErrorCounts {
    LineErrorCounts {
        frame,
        parity,
        brk,
        ..LineErrorCounts::default()
    }
}

/// Boot-log lines from a device whose clock runs `pct` percent fast, read at 9600.
fn drifting_text(pct: f64) -> (Vec<u8>, LineErrorCounts) {
    let sender = Sender::new(baud(9600), FrameFormat::default()).with_clock_ppm(pct * 1e4);
    let mut link = UartLink::new(sender, Receiver::new(baud(9600), FrameFormat::default()));
    let mut t = 0.0;
    for i in 0..40 {
        let line = TEXT[i % TEXT.len()].as_bytes();
        t = link.send(t, line) + 0.01;
    }
    let r = link.receive_until(t + 1.0);
    let c = r.counts;
    (r.bytes(), c)
}

#[test]
fn drift_is_fitted_from_framing_errors_on_clean_text() {
    let est = PassiveEstimator::new(Candidate::n81(baud(9600)), &COMMON_RATES);
    // No errors: no drift claimed.
    let (clean, c0) = drifting_text(0.0);
    assert_eq!(c0.frame, 0);
    let ev = Evidence {
        bytes: &clean,
        errors: c0,
        frames: &[],
    };
    assert_eq!(est.drift_pct(&ev), None);
    // 4 % fast: framing errors on some characters; the fit lands near 4 %.
    let (bytes, c) = drifting_text(4.0);
    assert!(c.frame > 0, "a 4 % clock error gives framing errors");
    let ev = Evidence {
        bytes: &bytes,
        errors: c,
        frames: &[],
    };
    let pct = est.drift_pct(&ev).unwrap();
    assert!((3.5..=4.5).contains(&pct), "fitted {pct} %");
}

// ---- the test corpus -------------------------------------------------------------------

const TEXT: &[&str] = &[
    "U-Boot 2021.07 (Mar 12 2024 - 10:31:07 +0000)\r\n",
    "DRAM:  256 MiB\r\n",
    "boot: checking flash... ok\r\n",
    "Hit any key to stop autoboot:  0\r\n",
    "Starting kernel ...\r\n",
    "[    0.000000] Booting Linux on physical CPU 0x0\r\n",
    "[    1.234567] serial: ttyS0 at MMIO 0x1c28000 (irq = 32) is a U6_16550A\r\n",
    "Welcome to the meter gateway. Please log in, or press enter for help.\r\n",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.\r\n",
    "app: heartbeat ok; uptime 3 days, load 0.42\r\n",
    "net: link up at 100 Mbps, full duplex\r\n",
    "It was the best of times, it was the worst of times; it was the age of wisdom.\r\n",
];

const MBUS_RSP_UD: &[u8] = &[
    0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, 0x13,
    0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
];
const IEC104_STARTDT: &[u8] = &[0x68, 0x04, 0x07, 0x00, 0x00, 0x00];
const IEC104_I: &[u8] = &[
    0x68, 0x0E, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x14,
];
const DLT645: &[u8] = &[
    0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33, 0x89, 0x67,
    0x45, 0x33, 0x9F, 0x16,
];
const FRAMES: &[&[u8]] = &[MBUS_RSP_UD, IEC104_STARTDT, IEC104_I, DLT645];

#[test]
fn checked_frames_count_checks_not_tokens() {
    // M-Bus RSP_UD (EN 13757-2 long frame, 40 bits) and DL/T 645 (32 bits) are checked;
    // the IEC 104 APCIs carry no check.
    let all: Vec<u8> = FRAMES.concat();
    assert_eq!(checked_frames(&all), vec![40, 32]);
    let mut bad = MBUS_RSP_UD.to_vec();
    bad[10] ^= 1;
    assert!(checked_frames(&bad).is_empty());
    assert!(checked_frames(b"hello world").is_empty());
    // Lone E5 acks (8 bits each) never count, however many.
    assert!(checked_frames(&[0xE5; 40]).is_empty());
    // One 40-bit frame among 256 bytes leaves 32 bits; E5s leave nothing.
    assert!((frame_net_bits(&[40], 256) - 32.0).abs() < 1e-9);
    assert_eq!(frame_net_bits(&[8, 8, 8, 8], 256), 0.0);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Binary,
}

/// A device writing lines or frames at its rate, idle 2–10 character times plus up to
/// 0.5 ms between them.
struct Device {
    units: Vec<Vec<u8>>,
    next: usize,
    rng: SplitMix64,
}

impl Device {
    fn new(kind: Kind, seed: u64) -> Device {
        let units: Vec<Vec<u8>> = match kind {
            Kind::Text => TEXT.iter().map(|s| s.as_bytes().to_vec()).collect(),
            Kind::Binary => FRAMES.iter().map(|f| f.to_vec()).collect(),
        };
        let mut rng = SplitMix64::new(seed);
        let next = rng.below(units.len() as u64) as usize;
        Device { units, next, rng }
    }

    fn pump(&mut self, link: &mut UartLink, until: f64) {
        let char_time = link.sender().char_time();
        while link.line_free_at() < until {
            let unit = &self.units[self.next % self.units.len()];
            self.next += 1;
            let end = link.send(link.line_free_at(), unit);
            let gap = (2.0 + 8.0 * self.rng.next_f64()) * char_time + 0.0005 * self.rng.next_f64();
            link.send(end + gap, &[]);
        }
    }
}

fn dwell(kind: Kind) -> Dwell {
    let bytes = match kind {
        Kind::Text => 64,
        Kind::Binary => 256,
    };
    // Enough for `bytes` characters at 1200, the slowest candidate.
    Dwell {
        bytes,
        seconds: 1.5 * bytes as f64 * 10.0 / 1200.0,
    }
}

/// How often the harness reads the simulated port: every 8 characters at the monitor's rate
/// (at least every 4 of the device's).
fn read_period(c: Candidate, true_rate: u32) -> f64 {
    (80.0 / f64::from(c.baud.bps())).max(40.0 / f64::from(true_rate))
}

struct Outcome {
    best: Option<Candidate>,
    ranking: Vec<Ranked>,
    bytes: usize,
    passive_top: Option<Candidate>,
}

fn run_trial(
    kind: Kind,
    true_rate: u32,
    true_format: &str,
    noisy: bool,
    start: Candidate,
    estimators: &mut HashMap<Candidate, PassiveEstimator>,
    seed: u64,
) -> Outcome {
    // Device clocks are off by up to ±1.5 % (an RC oscillator; crystals do far better).
    let ppm = (SplitMix64::new(seed ^ 0xC10C).next_f64() - 0.5) * 30_000.0;
    let sender = Sender::new(baud(true_rate), fmt(true_format)).with_clock_ppm(ppm);
    let mut link = UartLink::new(sender, Receiver::new(start.baud, start.format));
    if noisy {
        // Light: one glitch per ~2000 bit times, 0.1–1 bit wide.
        let n = Noise::in_bit_times(
            f64::from(true_rate) / 2000.0,
            0.1,
            1.0,
            baud(true_rate),
            seed,
        );
        link = link.with_noise(n);
    }
    let mut dev = Device::new(kind, seed);
    let dwell = dwell(kind);
    // Passive look at the starting setting.
    let mut t = 0.0;
    let (mut seen, mut counts) = (Vec::new(), LineErrorCounts::default());
    while seen.len() < dwell.bytes && t < dwell.seconds {
        t += read_period(start, true_rate);
        dev.pump(&mut link, t);
        let r = link.receive_until(t);
        seen.extend(r.bytes());
        let c = r.counts;
        counts.frame += c.frame;
        counts.parity += c.parity;
        counts.brk += c.brk;
    }
    seen.truncate(dwell.bytes);
    let est = estimators
        .entry(start)
        .or_insert_with(|| PassiveEstimator::new(start, &COMMON_RATES))
        .estimate(&Evidence {
            bytes: &seen,
            errors: counts,
            frames: &checked_frames(&seen),
        });
    let mut scan = ActiveScan::new(Candidate::n81_all(&COMMON_RATES), dwell)
        .with_frame_counter(Box::new(checked_frames))
        .prioritize(&est);
    while let Some(c) = scan.current() {
        link.set_receiver(Receiver::new(c.baud, c.format), t);
        scan.begin(t);
        loop {
            t += read_period(c, true_rate);
            dev.pump(&mut link, t);
            let r = link.receive_until(t);
            match scan.feed(t, &r.bytes(), r.counts) {
                ScanAction::Stay => {}
                _ => break,
            }
        }
    }
    Outcome {
        best: scan.best().map(|r| r.candidate),
        ranking: scan.ranking(),
        bytes: scan.bytes_seen(),
        passive_top: est.ranking.first().map(|r| r.candidate),
    }
}

#[test]
fn accuracy_over_generated_corpus() {
    let mut estimators = HashMap::new();
    let mut table = String::new();
    let mut seed = 1u64;
    let mut misses = Vec::new();
    let mut results = Vec::new();
    for kind in [Kind::Text, Kind::Binary] {
        let (mut hits, mut total) = (0usize, 0usize);
        table.push_str(&format!(
            "\n{kind:?} (dwell {} bytes)\n true rate   top-1   mean bytes   passive top-1\n",
            dwell(kind).bytes
        ));
        for &rate in &COMMON_RATES {
            let (mut ok, mut n, mut bytes, mut ptop) = (0, 0, 0, 0);
            for noisy in [false, true] {
                for &m in &COMMON_RATES {
                    seed += 1;
                    let start = Candidate::n81(baud(m));
                    let o = run_trial(kind, rate, "8N1", noisy, start, &mut estimators, seed);
                    n += 1;
                    bytes += o.bytes;
                    if o.best.map(|c| c.baud.bps()) == Some(rate) {
                        ok += 1;
                    } else {
                        misses.push(format!(
                            "{kind:?} {rate} noise={noisy} start={m}: got {:?}; {}",
                            o.best.map(|c| c.to_string()),
                            o.ranking
                                .iter()
                                .take(3)
                                .map(|r| format!(
                                    "{} {:.2} ({} B: {})",
                                    r.candidate, r.score, r.bytes, r.reason
                                ))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ));
                    }
                    if o.passive_top.map(|c| c.baud.bps()) == Some(rate) {
                        ptop += 1;
                    }
                }
            }
            table.push_str(&format!(
                " {rate:>9}   {:>4.0}%   {:>10.0}   {:>5.0}%\n",
                100.0 * ok as f64 / n as f64,
                bytes as f64 / n as f64,
                100.0 * ptop as f64 / n as f64
            ));
            hits += ok;
            total += n;
        }
        let acc = hits as f64 / total as f64;
        table.push_str(&format!(" all         {:>4.1}%\n", acc * 100.0));
        let floor = if kind == Kind::Text { 0.95 } else { 0.90 };
        for m in &misses {
            table.push_str(&format!("miss: {m}\n"));
        }
        misses.clear();
        results.push((kind, acc, floor));
    }
    println!("{table}");
    for (kind, acc, floor) in results {
        assert!(acc >= floor, "{kind:?}: top-1 {acc:.3} < {floor}");
    }
}

// ---- scoring ---------------------------------------------------------------------------

#[test]
fn text_stats_follow_devttys0() {
    let s = text_stats(b"boot: checking flash... ok\r\n");
    assert!(s.devttys0_run && s.printable == 1.0 && s.line_endings == 2);
    // A non-printable byte resets the run; no punctuation, no acceptance.
    assert!(!text_stats(b"abcdefghij klmnopqrstuvwxyz\x00ab").devttys0_run);
    assert!(!text_stats(b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").devttys0_run);
    assert_eq!(text_stats(b"").printable, 0.0);
}

#[test]
fn score_separates_text_frames_and_garbage() {
    let text = TEXT.concat();
    let text = &text.as_bytes()[..64];
    let clean = score(&Evidence {
        bytes: text,
        ..Evidence::default()
    });
    assert!(clean.value >= 0.95, "{clean:?}");
    // The same bytes with 40 % framing errors are not believed.
    let fe = score(&Evidence {
        bytes: text,
        errors: errs(26, 0, 0),
        frames: &[],
    });
    assert!(fe.value < 0.2, "{fe:?}");
    // A break stream (much slower device) and random bytes score ~0.
    let zeros = [0u8; 64];
    assert!(
        score(&Evidence {
            bytes: &zeros,
            errors: errs(0, 0, 64),
            frames: &[]
        })
        .value
            < 0.01
    );
    let mut rng = SplitMix64::new(5);
    let random: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
    assert!(
        score(&Evidence {
            bytes: &random,
            errors: errs(20, 0, 0),
            frames: &[]
        })
        .value
            < 0.1
    );
    // Frames: three valid ones on a clean line are proof.
    let bin = FRAMES.concat();
    let f = score(&Evidence {
        bytes: &bin,
        errors: errs(0, 0, 0),
        frames: &checked_frames(&bin),
    });
    assert!(f.value >= 0.95, "{f:?}");
    // Nothing received: 0, and no division by zero with errors but no bytes.
    assert_eq!(score(&Evidence::default()).value, 0.0);
    assert_eq!(
        score(&Evidence {
            bytes: &[],
            errors: errs(5, 5, 5),
            frames: &[40; 9]
        })
        .value,
        0.0
    );
}

// ---- passive estimation ----------------------------------------------------------------

fn observe(tx: Sender, rx: Candidate, payload: &[u8], max: usize) -> (Vec<u8>, LineErrorCounts) {
    let wave = tx.waveform(0.0, payload);
    let r = Receiver::new(rx.baud, rx.format).decode(&wave);
    let chars = &r.chars[..r.chars.len().min(max)];
    let mut e = LineErrorCounts::default();
    for c in chars {
        if c.brk {
            e.brk += 1;
        } else if c.parity_error {
            e.parity += 1;
        } else if c.framing_error {
            e.frame += 1;
        }
    }
    (chars.iter().map(|c| c.byte).collect(), e)
}

fn passive(tx_rate: u32, tx_fmt: &str, m: Candidate, payload: &[u8]) -> PassiveEstimate {
    let tx = Sender::new(baud(tx_rate), fmt(tx_fmt)).with_gap_bits(1.0);
    let (bytes, errors) = observe(tx, m, payload, 64);
    PassiveEstimator::new(m, &COMMON_RATES).estimate(&Evidence {
        bytes: &bytes,
        errors,
        frames: &checked_frames(&bytes),
    })
}

#[test]
fn passive_reads_the_reference_signatures() {
    let text = TEXT.concat().into_bytes();
    let at = |r| Candidate::n81(baud(r));
    // Right setting.
    let e = passive(9600, "8N1", at(9600), &text);
    assert_eq!(e.verdict, SettingVerdict::LooksRight, "{}", e.reason);
    assert_eq!(e.ranking[0].candidate, at(9600));
    // 9600 read at 115200: a stream of 00(FE): much lower.
    let e = passive(9600, "8N1", at(115200), &text);
    assert_eq!(
        e.verdict,
        SettingVerdict::Garbage(Mismatch::Lower),
        "{}",
        e.reason
    );
    assert!(e.reason.contains("00 with framing errors"), "{}", e.reason);
    assert!(e.ranking[0].candidate.baud.bps() <= 11520);
    // 2400 read at 9600: receiver-faster garbage, ratio 4 → 2400 first.
    let e = passive(2400, "8N1", at(9600), &text);
    assert_eq!(
        e.verdict,
        SettingVerdict::Garbage(Mismatch::Lower),
        "{}",
        e.reason
    );
    assert!(e.reason.contains("about 2400"), "{}", e.reason);
    assert_eq!(e.ranking[0].candidate, at(2400));
    // 115200 read at 9600: random with FE: higher, and higher rates ranked first.
    let e = passive(115200, "8N1", at(9600), &text);
    assert_eq!(
        e.verdict,
        SettingVerdict::Garbage(Mismatch::Higher),
        "{}",
        e.reason
    );
    assert!(e.ranking[..3].iter().all(|r| r.candidate.baud.bps() > 9600));
    // 7E1 text read as 8N1 ('h' arrives as E8): the format, not the rate.
    let e = passive(9600, "7E1", at(9600), &text);
    assert_eq!(
        e.verdict,
        SettingVerdict::Garbage(Mismatch::Format),
        "{}",
        e.reason
    );
    assert_eq!(e.ranking[0].candidate, at(9600).with_format("7E1"));
    // M-Bus at 2400 8E1 read as 8N1: FE on even-popcount bytes, frames intact.
    let mbus = FRAMES.concat().repeat(3);
    let tx = Sender::new(baud(2400), fmt("8E1"));
    let (bytes, errors) = observe(tx, at(2400), &mbus, 256);
    let e = PassiveEstimator::new(at(2400), &COMMON_RATES).estimate(&Evidence {
        bytes: &bytes,
        errors,
        frames: &checked_frames(&bytes),
    });
    assert_eq!(
        e.verdict,
        SettingVerdict::Garbage(Mismatch::Format),
        "{}",
        e.reason
    );
    assert_eq!(e.ranking[0].candidate, at(2400).with_format("8E1"));
    // Too little to judge.
    let e = PassiveEstimator::new(at(9600), &[9600]).estimate(&Evidence {
        bytes: b"hi",
        ..Evidence::default()
    });
    assert_eq!(e.verdict, SettingVerdict::NotEnoughData);
}

// ---- the active scan -------------------------------------------------------------------

#[test]
fn scan_finds_7e1_and_8e1_devices() {
    // 7E1 text read as 8N1 shows the 0x68/0xE8 signature; M-Bus at 2400 8E1 read as 8N1
    // shows framing errors on even-popcount bytes: both queue the variant at that rate.
    let mut estimators = HashMap::new();
    for (kind, rate, format, start) in [
        (Kind::Text, 9600, "7E1", 115200),
        (Kind::Text, 9600, "7E1", 9600),
        (Kind::Binary, 2400, "8E1", 2400),
        (Kind::Binary, 2400, "8E1", 9600),
    ] {
        let start = Candidate::n81(baud(start));
        let want = Candidate::new(baud(rate), fmt(format));
        // Ten device start points, with and without light noise.
        for seed in 0..10u64 {
            let noisy = seed % 2 == 1;
            let o = run_trial(kind, rate, format, noisy, start, &mut estimators, seed);
            assert_eq!(
                o.best,
                Some(want),
                "{kind:?} {rate} {format} from {start}, seed {seed}"
            );
        }
    }
}

#[test]
fn scan_state_machine() {
    let d = Dwell {
        bytes: 64,
        seconds: 1.0,
    };
    let cands = Candidate::n81_all(&[9600, 115200, 9600, 1200]);
    let mut scan = ActiveScan::new(cands, d);
    assert_eq!(scan.current(), Some(Candidate::n81(baud(9600))));
    scan.begin(0.0);
    // Nothing arrives: the dwell ends by time.
    assert_eq!(scan.poll(0.5), ScanAction::Stay);
    assert_eq!(
        scan.poll(1.0),
        ScanAction::Switch(Candidate::n81(baud(115200)))
    );
    // A break stream: rejected after 16 bytes, long before the dwell ends.
    scan.begin(1.0);
    assert_eq!(scan.feed(1.01, &[0; 8], errs(0, 0, 8)), ScanAction::Stay);
    assert_eq!(
        scan.feed(1.02, &[0; 8], errs(0, 0, 8)),
        ScanAction::Switch(Candidate::n81(baud(1200)))
    );
    // Clean text: accepted as soon as 32 bytes are in; the duplicate 9600 was dropped.
    // Before the scan ends, a control rate at least 4x away (no rate that far was heard
    // with 32 bytes) must not read the same: 14400, the untried rate nearest 8x (9600).
    scan.begin(2.0);
    let text = TEXT.concat();
    let step = scan.feed(2.5, &text.as_bytes()[..40], LineErrorCounts::default());
    assert_eq!(step, ScanAction::Switch(Candidate::n81(baud(14_400))));
    scan.begin(2.6);
    let garbage: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(97) | 0x80).collect();
    let step = scan.feed(2.7, &garbage, errs(20, 0, 0));
    let ScanAction::Finished(Some(best)) = step else {
        panic!("{step:?}");
    };
    assert_eq!(best.candidate, Candidate::n81(baud(1200)));
    assert!(scan.is_finished() && scan.current().is_none());
    assert!(!scan.rate_ignored());
    assert_eq!(scan.bytes_seen(), 16 + 40 + 64);
    // Feeding a finished scan is harmless.
    assert!(matches!(
        scan.feed(3.0, b"x", errs(1, 1, 1)),
        ScanAction::Finished(_)
    ));
    assert_eq!(scan.ranking().len(), 4);
    // No candidates: finished at once.
    let mut empty = ActiveScan::new(Vec::new(), d);
    assert!(empty.is_finished());
    assert_eq!(empty.poll(0.0), ScanAction::Finished(None));
}

/// A pseudo-terminal passes the same bytes whatever the setting: text at the first rate
/// and at the control rate means the port ignores the rate, never a lock.
#[test]
fn a_port_that_ignores_the_rate_is_said_not_locked() {
    let d = Dwell {
        bytes: 64,
        seconds: 1.0,
    };
    let text = TEXT.concat();
    let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600, 1200]), d);
    scan.begin(0.0);
    let step = scan.feed(0.1, &text.as_bytes()[..40], LineErrorCounts::default());
    let ScanAction::Switch(control) = step else {
        panic!("{step:?}");
    };
    assert_eq!(
        control.baud.bps(),
        921_600,
        "the untried rate nearest 8x 115200"
    );
    scan.begin(0.2);
    assert_eq!(
        scan.feed(0.3, &text.as_bytes()[40..80], LineErrorCounts::default()),
        ScanAction::RateIgnored
    );
    assert!(scan.rate_ignored() && scan.is_finished());
    // The same bytes at both, even bytes that do not score (unknown binary): ignored too.
    let mut rng = SplitMix64::new(9);
    let blob: Vec<u8> = (0..64).map(|_| rng.next_u64() as u8).collect();
    let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600]), d);
    for c in [0.0, 2.0] {
        scan.begin(c);
        scan.feed(c + 0.1, &blob, LineErrorCounts::default());
        scan.poll(c + 1.5);
    }
    assert!(scan.is_finished());
    assert!(scan.rate_ignored());
    // ...but a far slower device's 00 stream is the same at any rate and proves nothing.
    let mut scan = ActiveScan::new(Candidate::n81_all(&[115_200, 9600]), d);
    for c in [0.0, 2.0] {
        scan.begin(c);
        scan.feed(c + 0.1, &[0; 64], errs(0, 0, 64));
        scan.poll(c + 1.5);
    }
    assert!(scan.is_finished() && !scan.rate_ignored());
}

#[test]
fn prioritize_puts_the_passive_ranking_first() {
    let d = Dwell {
        bytes: 64,
        seconds: 1.0,
    };
    let m = Candidate::n81(baud(9600));
    let est = PassiveEstimate {
        monitor: m,
        verdict: SettingVerdict::Garbage(Mismatch::Format),
        current: Score::default(),
        ranking: vec![
            Ranked {
                candidate: m.with_format("7E1"),
                score: 0.8,
                bytes: 0,
                reason: String::new(),
            },
            Ranked {
                candidate: Candidate::n81(baud(1200)),
                score: 0.5,
                bytes: 0,
                reason: String::new(),
            },
        ],
        reason: String::new(),
    };
    let mut scan = ActiveScan::new(Candidate::n81_all(&[9600, 1200, 2400]), d).prioritize(&est);
    let mut order = Vec::new();
    while let Some(c) = scan.current() {
        order.push(c.to_string());
        scan.begin(0.0);
        scan.poll(2.0);
    }
    assert_eq!(order, ["9600 7E1", "1200 8N1", "9600 8N1", "2400 8N1"]);
}

#[test]
fn common_rates_win_ties() {
    // 74880 and 76800 decode each other cleanly: the common one ranks first.
    let mut r = vec![
        Ranked {
            candidate: Candidate::n81(baud(76800)),
            score: 0.99,
            bytes: 64,
            reason: String::new(),
        },
        Ranked {
            candidate: Candidate::n81(baud(74880)),
            score: 0.985,
            bytes: 64,
            reason: String::new(),
        },
    ];
    sort_ranking(&mut r);
    assert_eq!(r[0].candidate.baud.bps(), 74880);
}

fn estimator_9600() -> &'static PassiveEstimator {
    static E: std::sync::OnceLock<PassiveEstimator> = std::sync::OnceLock::new();
    E.get_or_init(|| PassiveEstimator::new(Candidate::n81(baud(9600)), &Baud::STANDARD))
}

proptest::proptest! {
    #[test]
    fn scoring_and_estimating_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        frame in 0u64..1000,
        parity in 0u64..1000,
        brk in proptest::prop_oneof![proptest::strategy::Just(u64::MAX), 0u64..1000],
        frames in proptest::collection::vec(proptest::prelude::any::<u16>(), 0..20),
    ) {
        let ev = Evidence { bytes: &bytes, errors: errs(frame, parity, brk), frames: &frames };
        let s = score(&ev);
        proptest::prop_assert!((0.0..=1.0).contains(&s.value));
        let e = estimator_9600().estimate(&ev);
        proptest::prop_assert!(!e.ranking.is_empty());
        proptest::prop_assert!(e.ranking.iter().all(|r| (0.0..=1.0).contains(&r.score)));
        let mut scan = ActiveScan::new(Candidate::n81_all(&[9600, 19200]), Dwell { bytes: 32, seconds: f64::NAN })
            .prioritize(&e);
        let _ = scan.feed(0.0, &bytes, errs(frame, parity, brk));
        let _ = scan.feed(f64::INFINITY, &bytes, errs(frame, parity, brk));
        proptest::prop_assert!(scan.ranking().iter().all(|r| (0.0..=1.0).contains(&r.score)));
    }
}
