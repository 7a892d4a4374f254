//! Bit-level UART line model: a sender driving an idle-high line, glitch noise, and a
//! 16×-oversampling receiver with its own rate and format — what a wrong baud rate, line noise
//! or a 7/8-bit mismatch turns bytes into (UART sampling (PC16550D datasheet)).
//!
//! The line is a sorted list of low intervals in seconds (`Waveform`); everything else is high.
//! The receiver runs a 16× sample clock whose tick 0 sits at its start time: it finds a falling
//! edge on the tick grid, validates the start bit by the majority of ticks 7, 8, 9, samples every
//! further bit the same way, checks parity and the (first) stop bit, and flags breaks. This is the
//! model of the reference simulator, and the unit tests below reproduce its tables.
//!
//! Pure: no I/O, no clock (time is a parameter), deterministic noise from a seeded PRNG.

use crate::event::{Baud, FrameFormat, LineErrorCounts, Parity};

/// Clock errors beyond ±20 % are clamped: no real UART is that far off, and the clamp keeps every
/// rate positive.
const MAX_PPM: f64 = 200_000.0;

/// Ticks of the receiver's sample clock per bit (16× oversampling, 16550/STM32 style).
const TICKS_PER_BIT: i64 = 16;

/// A sample reads the line this fraction of a tick *after* its nominal time, so a sample that
/// falls exactly on an edge reads the new level (low intervals are half-open `[start, end)`) even
/// when floating-point rounding puts the edge a hair after the sample.
const SAMPLE_BIAS_TICKS: f64 = 1e-4;

/// Past this tick count the f64 tick times lose precision; decoding stops there instead.
const TICK_LIMIT: i64 = 1 << 52;

/// At most this many glitches are generated per call, so an absurd noise rate cannot exhaust
/// memory.
const MAX_GLITCHES_PER_CALL: usize = 1_000_000;

/// The real bit rate of a clock with `ppm` parts-per-million error, in bit/s.
fn real_rate(baud: Baud, ppm: f64) -> f64 {
    let ppm = if ppm.is_finite() {
        ppm.clamp(-MAX_PPM, MAX_PPM)
    } else {
        0.0
    };
    f64::from(baud.bps()) * (1.0 + ppm / 1e6)
}

/// The parity bit a sender appends for `data` (already masked to the data bits), or `None`.
fn parity_bit(parity: Parity, data: u8) -> Option<bool> {
    let odd_ones = data.count_ones() % 2 == 1;
    match parity {
        Parity::None => None,
        // Even parity: the parity bit makes the number of ones even.
        Parity::Even => Some(odd_ones),
        Parity::Odd => Some(!odd_ones),
        Parity::Mark => Some(true),
        Parity::Space => Some(false),
    }
}

/// Mask selecting the data bits of a format (5 → 0x1F … 8 → 0xFF).
fn data_mask(format: FrameFormat) -> u8 {
    let n = format.data_bits.count();
    if n >= 8 { 0xFF } else { (1u8 << n) - 1 }
}

/// Bits in one character frame: start + data + parity + stop.
fn frame_bits(format: FrameFormat) -> u32 {
    let parity = u32::from(format.parity != Parity::None);
    1 + u32::from(format.data_bits.count()) + parity + u32::from(format.stop_bits.count())
}

/// The line level over time: sorted, merged, non-overlapping low intervals `[start, end)` in
/// seconds. The line is high (idle) everywhere else, so a megabyte of traffic costs a few low
/// intervals per byte rather than a sample per bit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Waveform {
    lows: Vec<(f64, f64)>,
}

impl Waveform {
    pub fn new() -> Waveform {
        Waveform::default()
    }

    /// The low intervals `[start, end)`, seconds, sorted and non-overlapping.
    pub fn lows(&self) -> &[(f64, f64)] {
        &self.lows
    }

    pub fn is_empty(&self) -> bool {
        self.lows.is_empty()
    }

    /// When the last low interval ends (seconds); 0 for an idle line.
    pub fn end(&self) -> f64 {
        self.lows.last().map_or(0.0, |&(_, end)| end)
    }

    /// Whether the line is low at `t` seconds (intervals are half-open).
    pub fn is_low(&self, t: f64) -> bool {
        let i = self.lows.partition_point(|&(_, end)| end <= t);
        self.lows.get(i).is_some_and(|&(start, _)| start <= t)
    }

    /// Pulls the line low over `[start, end)` seconds, merging with what is already low.
    /// Empty, reversed or non-finite intervals are ignored.
    pub fn add_low(&mut self, start: f64, end: f64) {
        if !(start.is_finite() && end.is_finite() && end > start) {
            return;
        }
        // The common case, a sender appending in time order, is a push or an extension.
        match self.lows.last_mut() {
            None => return self.lows.push((start, end)),
            Some(last) if start > last.1 => return self.lows.push((start, end)),
            Some(last) if start >= last.0 => {
                last.1 = last.1.max(end);
                return;
            }
            Some(_) => {}
        }
        // Out of order (a glitch in the past): merge every interval touching [start, end).
        let first = self.lows.partition_point(|&(_, e)| e < start);
        let mut last = first;
        let (mut s, mut e) = (start, end);
        while let Some(&(a, b)) = self.lows.get(last) {
            if a > end {
                break;
            }
            s = s.min(a);
            e = e.max(b);
            last += 1;
        }
        self.lows.splice(first..last, [(s, e)]);
    }

    /// One noise glitch: the line pulled low for `width` seconds from `at`.
    pub fn add_glitch(&mut self, at: f64, width: f64) {
        self.add_low(at, at + width);
    }

    /// Adds many low intervals at once (sorted and merged in one pass: cheaper than `add_low`
    /// for a batch of out-of-order glitches).
    pub fn add_lows(&mut self, lows: impl IntoIterator<Item = (f64, f64)>) {
        self.lows.extend(
            lows.into_iter()
                .filter(|&(s, e)| s.is_finite() && e.is_finite() && e > s),
        );
        self.lows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(self.lows.len());
        for &(s, e) in &self.lows {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.lows = merged;
    }

    /// Drops the intervals that end at or before `t` seconds (a streaming link keeps only what a
    /// receiver may still sample).
    pub fn forget_before(&mut self, t: f64) {
        let n = self.lows.partition_point(|&(_, e)| e <= t);
        self.lows.drain(..n);
    }
}

/// A UART transmitter: idle-high line, start bit, data bits LSB first, optional parity, stop
/// bits, then an optional idle gap before the next character.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sender {
    pub baud: Baud,
    pub format: FrameFormat,
    /// Clock error in parts per million: the real rate is `baud × (1 + ppm/1e6)`.
    pub clock_ppm: f64,
    /// Idle time between characters, in bit times (0 = back to back).
    pub gap_bits: f64,
}

impl Sender {
    pub fn new(baud: Baud, format: FrameFormat) -> Sender {
        Sender {
            baud,
            format,
            clock_ppm: 0.0,
            gap_bits: 0.0,
        }
    }

    pub fn with_clock_ppm(self, clock_ppm: f64) -> Sender {
        Sender { clock_ppm, ..self }
    }

    pub fn with_gap_bits(self, gap_bits: f64) -> Sender {
        Sender { gap_bits, ..self }
    }

    /// The real rate, bit/s (nominal rate corrected by the clock error).
    pub fn rate(&self) -> f64 {
        real_rate(self.baud, self.clock_ppm)
    }

    /// One bit time, seconds.
    pub fn bit_time(&self) -> f64 {
        1.0 / self.rate()
    }

    /// Bits per character frame (start + data + parity + stop), without the gap.
    pub fn frame_bits(&self) -> u32 {
        frame_bits(self.format)
    }

    fn gap(&self) -> f64 {
        if self.gap_bits.is_finite() {
            self.gap_bits.max(0.0)
        } else {
            0.0
        }
    }

    /// Time from one character's start bit to the next one's, seconds (frame + gap).
    pub fn char_time(&self) -> f64 {
        (f64::from(self.frame_bits()) + self.gap()) * self.bit_time()
    }

    /// Drives `bytes` onto `wave`, the first start bit at `at` seconds. Returns when the next
    /// character may start (after the last stop bit and the gap), so consecutive calls chain.
    pub fn send(&self, wave: &mut Waveform, at: f64, bytes: &[u8]) -> f64 {
        let ts = self.bit_time();
        let per_char = f64::from(self.frame_bits()) + self.gap();
        let mask = data_mask(self.format);
        let n = u32::from(self.format.data_bits.count());
        for (c, &byte) in bytes.iter().enumerate() {
            let data = byte & mask;
            let parity = parity_bit(self.format.parity, data);
            // Bit k of the frame is high? (start low; data; parity; stop high.)
            let level = |k: u32| -> bool {
                if k == 0 {
                    false
                } else if k <= n {
                    (data >> (k - 1)) & 1 == 1
                } else if k == n + 1 {
                    parity.unwrap_or(true)
                } else {
                    true
                }
            };
            // Every edge is computed from the message start in one multiplication, so bit
            // boundaries do not drift with rounding (tables depend on exact coincidences).
            let base = c as f64 * per_char;
            let mut k = 0;
            while k < n + 2 {
                if level(k) {
                    k += 1;
                    continue;
                }
                let run_start = k;
                while k < n + 2 && !level(k) {
                    k += 1;
                }
                wave.add_low(
                    at + (base + f64::from(run_start)) * ts,
                    at + (base + f64::from(k)) * ts,
                );
            }
        }
        at + bytes.len() as f64 * per_char * ts
    }

    /// The waveform of `bytes` alone, the first start bit at `at` seconds.
    pub fn waveform(&self, at: f64, bytes: &[u8]) -> Waveform {
        let mut wave = Waveform::new();
        self.send(&mut wave, at, bytes);
        wave
    }
}

/// A small deterministic PRNG (SplitMix64): noise must be reproducible from a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// Line noise: low glitches arriving at random (Poisson) at `rate_hz` per second, each
/// `min_width..=max_width` seconds wide (uniform). Deterministic for a given seed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    /// Mean glitches per second.
    pub rate_hz: f64,
    /// Narrowest glitch, seconds.
    pub min_width: f64,
    /// Widest glitch, seconds.
    pub max_width: f64,
    pub seed: u64,
}

impl Noise {
    pub fn new(rate_hz: f64, min_width: f64, max_width: f64, seed: u64) -> Noise {
        Noise {
            rate_hz,
            min_width,
            max_width,
            seed,
        }
    }

    /// Widths given in bit times of `baud` (e.g. "glitches of 0.1–1.5 bits at 9600").
    pub fn in_bit_times(
        rate_hz: f64,
        min_bits: f64,
        max_bits: f64,
        baud: Baud,
        seed: u64,
    ) -> Noise {
        let bit = 1.0 / f64::from(baud.bps());
        Noise::new(rate_hz, min_bits * bit, max_bits * bit, seed)
    }

    /// A generator that continues across windows (`NoiseGen::fill`) from `from` seconds.
    pub fn generator(&self, from: f64) -> NoiseGen {
        let mut gen_ = NoiseGen {
            noise: *self,
            rng: SplitMix64::new(self.seed),
            next_at: from,
        };
        gen_.advance();
        gen_
    }

    /// Adds this noise's glitches over `[from, to)` seconds to `wave`.
    pub fn apply(&self, wave: &mut Waveform, from: f64, to: f64) {
        self.generator(from).fill(wave, to);
    }
}

/// Glitch generator state: where the next glitch falls.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseGen {
    noise: Noise,
    rng: SplitMix64,
    next_at: f64,
}

impl NoiseGen {
    fn active(&self) -> bool {
        let n = &self.noise;
        n.rate_hz.is_finite()
            && n.rate_hz > 0.0
            && n.min_width.is_finite()
            && n.max_width.is_finite()
            && n.max_width > 0.0
            && self.next_at.is_finite()
    }

    /// Moves to the next arrival (exponential inter-arrival time).
    fn advance(&mut self) {
        if !self.active() {
            self.next_at = f64::INFINITY;
            return;
        }
        let u = self.rng.next_f64();
        self.next_at += -(1.0 - u).ln() / self.noise.rate_hz;
    }

    /// Adds the glitches that start before `until` seconds (at most a million per call).
    pub fn fill(&mut self, wave: &mut Waveform, until: f64) {
        let (lo, hi) = (
            self.noise.min_width.max(0.0),
            self.noise.max_width.max(self.noise.min_width).max(0.0),
        );
        let mut batch = Vec::new();
        while self.next_at < until && batch.len() < MAX_GLITCHES_PER_CALL {
            let width = lo + (hi - lo) * self.rng.next_f64();
            batch.push((self.next_at, self.next_at + width));
            self.advance();
        }
        if !batch.is_empty() {
            wave.add_lows(batch);
        }
    }
}

/// What a receiver does after a framing error (the stop bit sampled low), per the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AfterFramingError {
    /// Wait for the line to go high, then for a new falling edge (most MCU UARTs).
    #[default]
    Edge,
    /// 16550-style: a line still low right after the stop bit is taken as the next start bit.
    Level,
}

/// A UART receiver: its own rate, clock error, format and behaviour after framing errors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Receiver {
    pub baud: Baud,
    pub format: FrameFormat,
    /// Clock error in parts per million.
    pub clock_ppm: f64,
    pub after_framing_error: AfterFramingError,
}

/// One received character, with the flags the UART would raise for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RxChar {
    /// The data bits (LSB first), masked to the receiver's data width.
    pub byte: u8,
    /// The stop bit was sampled low. Also set on a break.
    pub framing_error: bool,
    pub parity_error: bool,
    /// Data, parity and stop all low: the line was held low for a whole character.
    pub brk: bool,
    /// When the receiver decided the character (the last stop-bit sample), seconds.
    pub at: f64,
}

/// Adds one character to error totals the way a Linux serial driver counts them (serial8250:
/// a break counts as `brk` only; otherwise a parity error counts as `parity` before a framing
/// error counts as `frame`). Overrun counters stay zero: the model never drops a character.
fn count(totals: &mut LineErrorCounts, c: &RxChar) {
    if c.brk {
        totals.brk += 1;
    } else if c.parity_error {
        totals.parity += 1;
    } else if c.framing_error {
        totals.frame += 1;
    }
}

/// Characters received over a stretch of line, and the error totals over it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Received {
    pub chars: Vec<RxChar>,
    pub counts: LineErrorCounts,
}

impl Received {
    /// Just the bytes, as a serial port would deliver them (flags dropped).
    pub fn bytes(&self) -> Vec<u8> {
        self.chars.iter().map(|c| c.byte).collect()
    }
}

impl Receiver {
    pub fn new(baud: Baud, format: FrameFormat) -> Receiver {
        Receiver {
            baud,
            format,
            clock_ppm: 0.0,
            after_framing_error: AfterFramingError::Edge,
        }
    }

    pub fn with_clock_ppm(self, clock_ppm: f64) -> Receiver {
        Receiver { clock_ppm, ..self }
    }

    pub fn with_after_framing_error(self, after_framing_error: AfterFramingError) -> Receiver {
        Receiver {
            after_framing_error,
            ..self
        }
    }

    /// The real rate, bit/s.
    pub fn rate(&self) -> f64 {
        real_rate(self.baud, self.clock_ppm)
    }

    /// A streaming decoder whose sample clock starts (tick 0) at `at` seconds.
    pub fn start(&self, at: f64) -> RxDecoder {
        let dt = 1.0 / (self.rate() * TICKS_PER_BIT as f64);
        RxDecoder {
            rx: *self,
            origin: if at.is_finite() { at } else { 0.0 },
            dt,
            bias: dt * SAMPLE_BIAS_TICKS,
            hunt_from: 0,
            level_armed: false,
            counts: LineErrorCounts::default(),
            hint: 0,
        }
    }

    /// Everything this receiver makes of `wave`, its sample clock starting at t = 0.
    pub fn decode(&self, wave: &Waveform) -> Received {
        let mut dec = self.start(0.0);
        let mut chars = Vec::new();
        dec.decode_until(wave, f64::INFINITY, &mut chars);
        Received {
            chars,
            counts: dec.counts(),
        }
    }
}

/// A receiver's running state: where it hunts for the next start bit, and its error totals.
#[derive(Debug, Clone, PartialEq)]
pub struct RxDecoder {
    rx: Receiver,
    /// Time of tick 0, seconds.
    origin: f64,
    /// One tick (1/16 bit), seconds.
    dt: f64,
    /// How far after its nominal time a sample reads the line, seconds.
    bias: f64,
    /// The first tick where a start bit may be detected.
    hunt_from: i64,
    /// Level mode after a framing error: a low at `hunt_from` is a start bit.
    level_armed: bool,
    counts: LineErrorCounts,
    /// Index into the waveform where the last lookup ended (samples move forward in time).
    hint: usize,
}

impl RxDecoder {
    pub fn receiver(&self) -> Receiver {
        self.rx
    }

    /// Error totals since this decoder started.
    pub fn counts(&self) -> LineErrorCounts {
        self.counts
    }

    /// The earliest time the decoder may still sample, seconds: a streaming link may forget
    /// the line before it.
    pub fn horizon(&self) -> f64 {
        self.tick_time(self.hunt_from.saturating_sub(1))
    }

    fn tick_time(&self, k: i64) -> f64 {
        self.origin + k as f64 * self.dt
    }

    /// The first tick whose (biased) sample falls at or after `t`.
    fn ceil_tick(&self, t: f64) -> i64 {
        ((t - self.bias - self.origin) / self.dt).ceil() as i64
    }

    /// Whether the line is low at tick `k`.
    fn low(&mut self, wave: &Waveform, k: i64) -> bool {
        let t = self.tick_time(k) + self.bias;
        let lows = wave.lows();
        // Samples mostly move forward, so walk from the last position; jump by binary search
        // when the position is stale.
        let mut i = self.hint.min(lows.len());
        if i > 0 && lows.get(i - 1).is_some_and(|&(_, e)| e > t) {
            i = lows.partition_point(|&(_, e)| e <= t);
        } else {
            let mut steps = 0;
            while lows.get(i).is_some_and(|&(_, e)| e <= t) {
                i += 1;
                steps += 1;
                if steps > 8 {
                    i = lows.partition_point(|&(_, e)| e <= t);
                    break;
                }
            }
        }
        self.hint = i;
        lows.get(i).is_some_and(|&(s, _)| s <= t)
    }

    /// Majority of the samples at ticks 7, 8 and 9 of the bit starting at tick `bit_start`:
    /// true = high.
    fn bit(&mut self, wave: &Waveform, bit_start: i64) -> bool {
        let lows = (7..=9)
            .filter(|&o| self.low(wave, bit_start.saturating_add(o)))
            .count();
        lows < 2
    }

    /// The tick of the next start-bit detection at or after `hunt_from`: a low tick after a high
    /// one (or, level mode after a framing error, a low at `hunt_from` itself).
    fn find_start(&mut self, wave: &Waveform) -> Option<i64> {
        let from = self.hunt_from;
        if from > TICK_LIMIT {
            return None;
        }
        if self.level_armed && self.low(wave, from) {
            return Some(from);
        }
        let lows = wave.lows();
        let t_from = self.tick_time(from) + self.bias;
        let mut i = lows.partition_point(|&(_, e)| e <= t_from);
        while let Some(&(a, b)) = lows.get(i) {
            let j = from.max(self.ceil_tick(a));
            if j > TICK_LIMIT {
                return None;
            }
            if self.tick_time(j) + self.bias >= b {
                // Too short to contain a tick: the receiver never sees it.
                i += 1;
                continue;
            }
            if !self.low(wave, j - 1) {
                return Some(j);
            }
            // Low already at the tick before: no edge anywhere in this interval.
            i += 1;
        }
        None
    }

    /// Decodes every character whose last sample falls at or before `until` seconds, appending
    /// them to `out`. A character still in flight at `until` is left for the next call.
    pub fn decode_until(&mut self, wave: &Waveform, until: f64, out: &mut Vec<RxChar>) {
        let format = self.rx.format;
        let n = i64::from(format.data_bits.count());
        let has_parity = format.parity != Parity::None;
        let stop_index = 1 + n + i64::from(has_parity);
        let mask = data_mask(format);
        while let Some(d) = self.find_start(wave) {
            let last_tick = d.saturating_add(TICKS_PER_BIT * stop_index + 9);
            if self.tick_time(last_tick) > until {
                // In flight: hunting resumes here next time (level_armed is kept as it is).
                return;
            }
            self.level_armed = false;
            // Start bit not confirmed by the majority at mid-bit: a glitch. Hunting resumes on
            // the tick after the detection, as in the reference simulator (which is what
            // turns "hello world\r\n" at 115200 into D7 at 9600).
            if self.bit(wave, d) {
                self.hunt_from = d.saturating_add(1);
                continue;
            }
            let mut data = 0u8;
            for i in 0..n {
                if self.bit(wave, d + TICKS_PER_BIT * (1 + i)) {
                    data |= 1 << i;
                }
            }
            let parity_sample = if has_parity {
                Some(self.bit(wave, d + TICKS_PER_BIT * (1 + n)))
            } else {
                None
            };
            // Only the first stop bit is checked (16550 behaviour, also for 2 stop bits).
            let stop = self.bit(wave, d + TICKS_PER_BIT * stop_index);
            let parity_error = match (parity_bit(format.parity, data & mask), parity_sample) {
                (Some(expected), Some(got)) => expected != got,
                _ => false,
            };
            let brk = data == 0 && parity_sample != Some(true) && !stop;
            let c = RxChar {
                byte: data,
                framing_error: !stop,
                parity_error,
                brk,
                at: self.tick_time(last_tick),
            };
            count(&mut self.counts, &c);
            out.push(c);
            self.hunt_from = last_tick.saturating_add(1);
            self.level_armed = !stop && self.rx.after_framing_error == AfterFramingError::Level;
        }
    }
}

/// A simulated serial link: a sender, optional noise and a receiver that can be retuned while
/// the line runs — what a simulated port needs to show the monitor's view of a device. Feed it in
/// time order: `send` all traffic up to a time before `receive_until` that time.
#[derive(Debug, Clone)]
pub struct UartLink {
    sender: Sender,
    decoder: RxDecoder,
    wave: Waveform,
    noise: Option<NoiseGen>,
    /// When the sender may start its next character, seconds.
    line_free_at: f64,
}

impl UartLink {
    /// A quiet link; the receiver's sample clock starts at t = 0.
    pub fn new(sender: Sender, receiver: Receiver) -> UartLink {
        UartLink {
            sender,
            decoder: receiver.start(0.0),
            wave: Waveform::new(),
            noise: None,
            line_free_at: 0.0,
        }
    }

    /// Adds glitch noise from t = 0.
    pub fn with_noise(self, noise: Noise) -> UartLink {
        UartLink {
            noise: Some(noise.generator(0.0)),
            ..self
        }
    }

    pub fn sender(&self) -> Sender {
        self.sender
    }

    pub fn receiver(&self) -> Receiver {
        self.decoder.receiver()
    }

    /// When the line is free for the sender's next character, seconds.
    pub fn line_free_at(&self) -> f64 {
        self.line_free_at
    }

    /// Queues `bytes` on the line from `at` seconds (later if the sender is still busy).
    /// Returns when the line is free again.
    pub fn send(&mut self, at: f64, bytes: &[u8]) -> f64 {
        let at = if at.is_finite() { at } else { 0.0 };
        let start = at.max(self.line_free_at);
        self.line_free_at = self.sender.send(&mut self.wave, start, bytes);
        self.line_free_at
    }

    /// One glitch at `at` seconds, `width` seconds wide.
    pub fn add_glitch(&mut self, at: f64, width: f64) {
        self.wave.add_glitch(at, width);
    }

    /// The device changed its settings (takes effect for the next `send`).
    pub fn set_sender(&mut self, sender: Sender) {
        self.sender = sender;
    }

    /// The monitor changed its settings at `at` seconds: a new sample clock starts there, with
    /// fresh error totals; a character in flight is lost, as on a real port.
    pub fn set_receiver(&mut self, receiver: Receiver, at: f64) {
        self.decoder = receiver.start(at);
    }

    /// Characters completed by `until` seconds since the last call, and the error totals over
    /// them.
    pub fn receive_until(&mut self, until: f64) -> Received {
        if let Some(noise) = self.noise.as_mut() {
            noise.fill(&mut self.wave, until);
        }
        let before = self.decoder.counts();
        let mut chars = Vec::new();
        self.decoder.decode_until(&self.wave, until, &mut chars);
        let counts = self.decoder.counts().since(&before);
        // Keep only what the decoder may still sample.
        self.wave.forget_before(self.decoder.horizon());
        self.decoder.hint = 0;
        Received { chars, counts }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn baud(b: u32) -> Baud {
        Baud::new(b).unwrap()
    }

    fn fmt(s: &str) -> FrameFormat {
        s.parse().unwrap()
    }

    /// The reference's notation: `68`, `00(FE)`; breaks print as `00(FE)` too.
    fn show(r: &Received) -> String {
        r.chars
            .iter()
            .map(|c| {
                let mut s = format!("{:02X}", c.byte);
                if c.framing_error {
                    s.push_str("(FE)");
                }
                if c.parity_error {
                    s.push_str("(PE)");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn sim(
        tx: u32,
        tx_fmt: &str,
        rx: u32,
        rx_fmt: &str,
        mode: AfterFramingError,
        bytes: &[u8],
    ) -> Received {
        let wave = Sender::new(baud(tx), fmt(tx_fmt)).waveform(0.0, bytes);
        Receiver::new(baud(rx), fmt(rx_fmt))
            .with_after_framing_error(mode)
            .decode(&wave)
    }

    fn sim8n1(tx: u32, rx: u32, bytes: &[u8]) -> String {
        show(&sim(tx, "8N1", rx, "8N1", AfterFramingError::Edge, bytes))
    }

    /// The 12 rates of the reference's "132 rate pairs".
    const COMMON: [u32; 12] = [
        1200, 2400, 4800, 9600, 19200, 38400, 57600, 74880, 115200, 230400, 460800, 921600,
    ];

    #[test]
    fn isolated_0x68_at_wrong_rates_matches_reference() {
        let rows: &[(u32, u32, &str)] = &[
            (1200, 2400, "80 9E"),
            (1200, 4800, "00(FE) F8 F8"),
            (1200, 9600, "00(FE) 80 80"),
            (9600, 115200, "00(FE) 00(FE) 00(FE)"),
            (2400, 1200, "FC"),
            (4800, 1200, "FF"),
            (115200, 9600, ""),
            (115200, 74880, "E8"),
            (57600, 38400, "E8"),
            (57600, 74880, "90 FF"),
            (74880, 115200, "60 FE"),
        ];
        for &(tx, rx, want) in rows {
            assert_eq!(sim8n1(tx, rx, &[0x68]), want, "{tx} -> {rx}");
        }
        // Level mode (16550-like) takes the continuing low after the framing error as a start.
        let level = sim(1200, "8N1", 4800, "8N1", AfterFramingError::Level, &[0x68]);
        assert_eq!(show(&level), "00(FE) E0 F8 F8");
        // 9600 -> 115200: each 00(FE) is a break (line low for a whole character).
        let r = sim(9600, "8N1", 115200, "8N1", AfterFramingError::Edge, &[0x68]);
        assert!(r.chars.iter().all(|c| c.brk));
        assert_eq!(
            r.counts,
            LineErrorCounts {
                brk: 3,
                ..LineErrorCounts::default()
            }
        );
    }

    #[test]
    fn single_glitch_decodes_by_width_as_in_reference() {
        let rows: &[(f64, &str)] = &[
            (0.25, ""),
            (0.5, ""),
            (0.75, "FF"),
            (1.0, "FF"),
            (1.5, "FF"),
            (2.0, "FE"),
            (2.5, "FE"),
            (3.0, "FC"),
            (4.0, "F8"),
            (5.0, "F0"),
            (6.0, "E0"),
            (7.0, "C0"),
            (8.0, "80"),
            (9.0, "00"),
            (10.0, "00(FE)"),
            (12.0, "00(FE)"),
            (40.0, "00(FE)"),
        ];
        let rx = Receiver::new(baud(9600), FrameFormat::default());
        let bit = 1.0 / 9600.0;
        for &(w, want) in rows {
            let mut wave = Waveform::new();
            wave.add_glitch(0.0, w * bit);
            let r = rx.decode(&wave);
            assert_eq!(show(&r), want, "width {w} bits");
            if w >= 10.0 {
                assert!(r.chars[0].brk, "width {w}: break");
            }
        }
    }

    #[test]
    fn format_mismatches_match_reference() {
        let e = AfterFramingError::Edge;
        assert_eq!(show(&sim(9600, "7E1", 9600, "8N1", e, b"h")), "E8");
        assert_eq!(show(&sim(9600, "7O1", 9600, "8N1", e, b"h")), "68");
        assert_eq!(show(&sim(9600, "8N1", 9600, "7E1", e, &[0xE8])), "68");
        assert_eq!(
            show(&sim(9600, "7E1", 9600, "8N1", e, b"hello")),
            "E8 65 6C 6C 6F"
        );
        // 8E1 read as 8N1: data intact, even-popcount bytes get FE (their parity bit is 0).
        // (0x68, 0x15, 0x16 have odd popcount — the FT1.2 framing characters pass cleanly.)
        let r = sim(2400, "8E1", 2400, "8N1", e, &[0x68, 0x15, 0x03, 0x16, 0xC0]);
        assert_eq!(show(&r), "68 15 03(FE) 16 C0(FE)");
        // 8N1 read as 8E1: parity errors, and framing errors for back-to-back bytes.
        let r = sim(2400, "8N1", 2400, "8E1", e, &[0x00, 0x01, 0x03]);
        assert!(r.counts.parity > 0 && r.chars.iter().any(|c| c.framing_error));
    }

    #[test]
    fn hello_world_streams_match_reference() {
        let msg = b"hello world\r\n";
        assert_eq!(sim8n1(115200, 9600, msg), "D7(FE)");
        let r = sim(9600, "8N1", 115200, "8N1", AfterFramingError::Edge, msg);
        assert_eq!(r.chars.len(), 39);
        assert!(r.chars.iter().all(|c| c.byte == 0 && c.framing_error));
        let got = sim8n1(57600, 115200, msg);
        assert!(
            got.starts_with("80 9E 66(FE) 06(FE) 9E E0 9E FE 9E"),
            "57600 -> 115200: {got}"
        );
    }

    #[test]
    fn only_57600_to_74880_turns_isolated_bytes_into_0x68() {
        let mut producers = Vec::new();
        for &tx in &COMMON {
            for &rx in &COMMON {
                if tx == rx {
                    continue;
                }
                for b in 0..=255u8 {
                    let r = sim(tx, "8N1", rx, "8N1", AfterFramingError::Edge, &[b]);
                    if r.chars.iter().any(|c| c.byte == 0x68) {
                        producers.push((tx, rx, b, show(&r)));
                    }
                }
            }
        }
        let want = vec![
            (57600, 74880, 0x14, "68(FE)".to_string()),
            (57600, 74880, 0x54, "68 FF".to_string()),
            (57600, 74880, 0x94, "68(FE)".to_string()),
            (57600, 74880, 0xD4, "68".to_string()),
        ];
        assert_eq!(producers, want);
    }

    #[test]
    fn counters_follow_linux_priorities() {
        // A break counts as brk only; a byte with bad parity and a bad stop counts as parity.
        let mut c = LineErrorCounts::default();
        let ch = |fe, pe, brk| RxChar {
            byte: 0,
            framing_error: fe,
            parity_error: pe,
            brk,
            at: 0.0,
        };
        count(&mut c, &ch(true, true, true));
        count(&mut c, &ch(true, true, false));
        count(&mut c, &ch(true, false, false));
        assert_eq!(
            c,
            LineErrorCounts {
                frame: 1,
                parity: 1,
                brk: 1,
                ..LineErrorCounts::default()
            }
        );
    }

    #[test]
    fn waveform_merges_out_of_order_lows() {
        let mut w = Waveform::new();
        w.add_low(10.0, 11.0);
        w.add_low(1.0, 2.0);
        w.add_low(1.5, 3.0);
        w.add_low(3.0, 4.0);
        w.add_low(5.0, 5.0);
        w.add_low(f64::NAN, 1.0);
        assert_eq!(w.lows(), &[(1.0, 4.0), (10.0, 11.0)]);
        w.add_low(0.0, 20.0);
        assert_eq!(w.lows(), &[(0.0, 20.0)]);
        assert!(w.is_low(0.0) && w.is_low(19.9) && !w.is_low(20.0));
        w.forget_before(25.0);
        assert!(w.is_empty());
    }

    #[test]
    fn link_streams_like_one_shot_decode_and_retunes() {
        let tx = Sender::new(baud(9600), FrameFormat::default()).with_gap_bits(1.0);
        let rx = Receiver::new(baud(9600), FrameFormat::default());
        let mut link = UartLink::new(tx, rx);
        let mut got = Vec::new();
        let mut t = 0.0;
        for chunk in b"hello world, this is a link test\r\n".chunks(5) {
            t = link.send(t, chunk);
            got.extend(link.receive_until(t - 0.0001).bytes());
        }
        got.extend(link.receive_until(t + 0.01).bytes());
        assert_eq!(got, b"hello world, this is a link test\r\n");
        // Retuned 12x too fast: a stream of breaks.
        link.set_receiver(
            Receiver::new(baud(115200), FrameFormat::default()),
            t + 0.01,
        );
        let t = link.send(t + 0.02, b"hello");
        let r = link.receive_until(t + 0.01);
        assert!(!r.chars.is_empty() && r.chars.iter().all(|c| c.byte == 0 && c.brk));
        assert_eq!(r.counts.brk as usize, r.chars.len());
    }

    #[test]
    fn noise_is_deterministic_and_never_panics() {
        let n = Noise::in_bit_times(1000.0, 0.1, 2.0, baud(9600), 7);
        let (mut a, mut b) = (Waveform::new(), Waveform::new());
        n.apply(&mut a, 0.0, 1.0);
        n.apply(&mut b, 0.0, 1.0);
        assert_eq!(a, b);
        assert!((800..1200).contains(&a.lows().len()));
        // Absurd parameters: no glitches, or a bounded number, never a panic.
        for n in [
            Noise::new(f64::NAN, 0.0, 1.0, 1),
            Noise::new(-1.0, 0.0, 1.0, 1),
            Noise::new(1.0, f64::INFINITY, 1.0, 1),
        ] {
            let mut w = Waveform::new();
            n.apply(&mut w, 0.0, 10.0);
            assert!(w.is_empty());
        }
        let mut w = Waveform::new();
        Noise::new(1e12, 1e-15, 1e-15, 1).apply(&mut w, 0.0, 1.0);
        assert!(w.lows().len() <= MAX_GLITCHES_PER_CALL);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let rx = Receiver::new(baud(4_000_000), FrameFormat::default()).with_clock_ppm(f64::NAN);
        let mut w = Waveform::new();
        w.add_low(1e300, 1e301);
        w.add_low(-5.0, -4.0);
        assert!(rx.decode(&w).chars.len() <= 1);
        let tx = Sender::new(baud(50), fmt("5M2"))
            .with_clock_ppm(-1e9)
            .with_gap_bits(f64::NAN);
        let r = Receiver::new(baud(50), fmt("5M2"))
            .with_clock_ppm(-1e9)
            .decode(&tx.waveform(0.0, &[0xFF, 0x00]));
        assert_eq!(r.bytes(), vec![0x1F, 0x00]);
    }

    fn any_format() -> impl Strategy<Value = FrameFormat> {
        (
            prop::sample::select(vec!["5", "6", "7", "8"]),
            prop::sample::select(vec!["N", "E", "O", "M", "S"]),
            prop::sample::select(vec!["1", "2"]),
        )
            .prop_map(|(d, p, s)| fmt(&format!("{d}{p}{s}")))
    }

    proptest! {
        #[test]
        fn same_rate_and_format_round_trips(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            rate in prop::sample::select(Baud::STANDARD.to_vec()),
            format in any_format(),
            gap in prop_oneof![Just(0.0), 0.0..5.0f64],
            ppm in prop_oneof![Just(0.0), -10_000.0..10_000.0f64],
            level in any::<bool>(),
            at in 0.0..1.0f64,
        ) {
            let tx = Sender::new(baud(rate), format).with_gap_bits(gap).with_clock_ppm(ppm);
            let mode = if level { AfterFramingError::Level } else { AfterFramingError::Edge };
            let r = Receiver::new(baud(rate), format)
                .with_after_framing_error(mode)
                .decode(&tx.waveform(at, &bytes));
            let mask = data_mask(format);
            let want: Vec<u8> = bytes.iter().map(|b| b & mask).collect();
            prop_assert_eq!(r.bytes(), want);
            prop_assert_eq!(r.counts, LineErrorCounts::default());
            prop_assert!(r.chars.iter().all(|c| !c.framing_error && !c.parity_error && !c.brk));
        }

        #[test]
        fn a_single_glitch_never_decodes_as_0x68(
            width_bits in 0.0..30.0f64,
            at_bits in 0.0..4.0f64,
            rate in prop::sample::select(COMMON.to_vec()),
            format in prop::sample::select(vec!["8N1", "8E1", "7E1", "8N2"]),
            level in any::<bool>(),
        ) {
            let bit = 1.0 / f64::from(rate);
            let mut wave = Waveform::new();
            wave.add_glitch(at_bits * bit, width_bits * bit);
            let mode = if level { AfterFramingError::Level } else { AfterFramingError::Edge };
            let r = Receiver::new(baud(rate), fmt(format))
                .with_after_framing_error(mode)
                .decode(&wave);
            prop_assert!(r.chars.iter().all(|c| c.byte != 0x68), "{}", show(&r));
        }

        #[test]
        fn decoding_any_line_never_panics(
            lows in prop::collection::vec((0.0..0.01f64, 0.0..0.002f64), 0..40),
            rate in prop::sample::select(Baud::STANDARD.to_vec()),
            format in any_format(),
            level in any::<bool>(),
        ) {
            let mut wave = Waveform::new();
            wave.add_lows(lows.iter().map(|&(s, w)| (s, s + w)));
            let mode = if level { AfterFramingError::Level } else { AfterFramingError::Edge };
            let r = Receiver::new(baud(rate), format).with_after_framing_error(mode).decode(&wave);
            let total = r.counts.frame + r.counts.parity + r.counts.brk;
            prop_assert!(total as usize <= r.chars.len());
        }
    }
}
