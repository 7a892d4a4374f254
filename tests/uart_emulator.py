#!/usr/bin/env python3
"""An independent UART line emulator for hsmon's auto-baud tests.

Written from the UART framing and receiver descriptions, not from hsmon's own line model
(src/uart_line.rs), so that the scan is tested against something it was not fitted to:

* Texas Instruments, "KeyStone Architecture Universal Asynchronous Receiver/Transmitter
  (UART) User Guide", SPRUGP1 (frame: one start bit, 5-8 data bits least significant first,
  optional parity, 1, 1.5 or 2 stop bits; the receiver detects the start bit's falling edge
  and samples each bit in its middle), https://www.ti.com/lit/ug/sprugp1/sprugp1.pdf
* Texas Instruments, "PC16550D Universal Asynchronous Receiver/Transmitter with FIFOs",
  SNLS378, the Line Status Register's framing-error (FE: the stop bit sampled as 0) and
  break-interrupt (BI: the line held at 0 for a whole character) bits,
  https://www.ti.com/lit/ds/symlink/pc16550d.pdf

The device side transmits at its true rate (its clock may be off by some ppm); a receiver
samples that line at its own rate: it waits for a falling edge after the previous
character's stop-bit sample (so it resynchronises on every character; the 16550 handles a
framing error slightly differently, taking the low stop bit as the next start), checks the start
bit at mid-bit, samples the data bits, parity and stop bit at their mid-points, and reports
a framing error when the stop sample is 0 (a break when every sample was 0). Bytes with a
framing error are delivered as received (a port with INPCK off, hsmon's raw mode, does so).

Two modes:

  corpus  prints, for every (payload, device rate, receiver rate) with the two rates apart,
          one JSON line with what the receiver reads in one dwell: the garbage an auto-baud
          scan must never lock on.
  pty     opens a pseudo-terminal pair, prints "ready PATH" (the slave hsmon opens), plays
          the device, and re-renders its bit stream at whatever rate hsmon sets on the pty:
          a pty stores the speed (TCGETS2 reads it) but ignores it, so this process reads it
          every few ms and decodes the device's line at that rate, as a UART would.
          --ignore-rate keeps the true rate whatever is set: a plain pty, which passes bytes
          unchanged (what hsmon must call "the port ignores the baud rate").

Only the Python standard library is used (Debian's python3).
"""

import argparse
import bisect
import fcntl
import json
import os
import random
import select
import struct
import sys
import termios
import time
import tty

# ---- payloads ----------------------------------------------------------------------------

LOG_LINES = [
    "U-Boot 2021.07 (Mar 12 2024 - 10:31:07 +0000)\r\n",
    "DRAM:  256 MiB\r\n",
    "Hit any key to stop autoboot:  0\r\n",
    "Starting kernel ...\r\n",
    "[    0.000000] Booting Linux on physical CPU 0x0\r\n",
    "[    1.234567] serial: ttyS0 at MMIO 0x1c28000 (irq = 32) is a 16550A\r\n",
    "ets Jan  8 2013,rst cause:2, boot mode:(3,6)\r\n",
    "load 0x4010f000, len 3460, room 16\r\n",
    "app: heartbeat ok; uptime 3 days, load 0.42\r\n",
    "I (312) wifi: mode : sta (30:ae:a4:01:02:03)\r\n",
]


def mbus_long(c, a, ci, data):
    """An EN 13757-2 long frame: 68 L L 68 C A CI data CS 16, CS = sum of C..data mod 256."""
    body = bytes([c, a, ci]) + bytes(data)
    cs = sum(body) & 0xFF
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([cs, 0x16])


def mbus_short(c, a):
    """An EN 13757-2 short frame: 10 C A CS 16."""
    return bytes([0x10, c, a, (c + a) & 0xFF, 0x16])


def mbus_units(rng):
    """A meter answering REQ_UD2 polls: RSP_UD telegrams with changing readings, the polls
    (short frames) and single-character acks (E5) in between."""
    units = []
    for i in range(12):
        energy = rng.randrange(1 << 24)
        volume = rng.randrange(1 << 16)
        data = [0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07, i & 0xFF, 0x00, 0x00, 0x00,
                0x04, 0x06, energy & 0xFF, (energy >> 8) & 0xFF, (energy >> 16) & 0xFF, 0x00,
                0x02, 0x13, volume & 0xFF, volume >> 8]
        units.append(mbus_short(0x5B, 0x02))
        units.append(mbus_long(0x08, 0x02, 0x72, data))
        units.append(bytes([0xE5]))
    return units


def payload_units(kind, rng):
    if kind == "text":
        return [line.encode() for line in LOG_LINES]
    if kind == "mbus":
        return mbus_units(rng)
    raise SystemExit(f"unknown payload {kind!r} (text, mbus)")


# ---- the frame format ----------------------------------------------------------------------


class Format:
    """Data bits (5-8), parity (N, E, O) and stop bits (1, 2), as in "8N1"."""

    def __init__(self, text="8N1"):
        self.data = int(text[0])
        self.parity = text[1].upper()
        self.stop = int(text[2])
        if self.data not in (5, 6, 7, 8) or self.parity not in "NEO" or self.stop not in (1, 2):
            raise SystemExit(f"bad format {text!r}")

    def bits(self, byte):
        """The line levels of one character: start, data LSB first, parity, stop."""
        data = [(byte >> i) & 1 for i in range(self.data)]
        out = [0] + data
        if self.parity != "N":
            ones = sum(data)
            out.append(ones & 1 if self.parity == "E" else 1 - (ones & 1))
        return out + [1] * self.stop

    def length(self):
        return 1 + self.data + (self.parity != "N") + self.stop


# ---- the device's line ---------------------------------------------------------------------


class Line:
    """What the device puts on the wire: characters at scheduled times, idle (1) between.

    Kept as a schedule (start time, bit levels) rather than as sampled levels, so a device
    far faster than the receiver costs one entry per character, not one per bit."""

    def __init__(self, rate, fmt, ppm=0.0):
        self.bit = 1.0 / rate * (1.0 + ppm * 1e-6)
        self.fmt = fmt
        self.starts = []
        self.frames = []
        self.table = [fmt.bits(b) for b in range(1 << fmt.data)]
        # Falling edges inside each character, as bit indexes (the start bit's is index 0).
        self.falls = [[k for k in range(1, len(bits)) if bits[k - 1] == 1 and bits[k] == 0]
                      for bits in self.table]
        self.free_at = 0.0

    def send(self, t, data):
        """Queues `data` from time `t` (or when the line is free); returns the end time."""
        t = max(t, self.free_at)
        n = self.fmt.length()
        for b in data:
            self.starts.append(t)
            self.frames.append(b & ((1 << self.fmt.data) - 1))
            t += n * self.bit
        self.free_at = t
        return t

    def _char_at(self, t):
        i = bisect.bisect_right(self.starts, t) - 1
        return i

    def level(self, t):
        i = self._char_at(t)
        if i < 0:
            return 1
        k = int((t - self.starts[i]) / self.bit)
        bits = self.table[self.frames[i]]
        return bits[k] if k < len(bits) else 1

    def next_fall(self, t):
        """The first falling edge at or after `t`, or None if none is scheduled yet."""
        i = self._char_at(t)
        if i >= 0 and self.starts[i] == t:
            return t
        if i >= 0:
            base = self.starts[i]
            for k in self.falls[self.frames[i]]:
                edge = base + k * self.bit
                if edge >= t:
                    return edge
        # The next character's start bit falls from idle, or from the previous character's
        # stop bit: always a falling edge.
        j = i + 1
        if j < len(self.starts):
            return max(self.starts[j], t)
        return None

    def forget_before(self, t):
        """Drops characters that ended before `t` (the pty mode runs for minutes)."""
        keep = bisect.bisect_right(self.starts, t - 2 * self.fmt.length() * self.bit)
        if keep > 1000:
            del self.starts[:keep]
            del self.frames[:keep]


class Receiver:
    """A UART receiver at `rate`: mid-bit sampling from each start edge, framing errors."""

    def __init__(self, rate, fmt):
        self.rate = rate
        self.fmt = fmt
        self.bit = 1.0 / rate
        self.hunt_from = 0.0
        self.framing_errors = 0
        self.breaks = 0

    def retune(self, rate, t):
        """The port was set to `rate` at `t`: the character in flight is lost."""
        self.rate = rate
        self.bit = 1.0 / rate
        self.hunt_from = max(self.hunt_from, t)

    def receive(self, line, until, limit=None):
        """Characters whose stop bit was sampled by `until`: a list of bytes."""
        out = []
        n = self.fmt.length() - self.fmt.stop + 1  # start..first stop bit
        while limit is None or len(out) < limit:
            edge = line.next_fall(self.hunt_from)
            if edge is None:
                break
            stop_at = edge + (n - 0.5) * self.bit
            if stop_at > until:
                break
            if line.level(edge + 0.5 * self.bit) != 0:
                # A glitch, not a start bit: hunt again after the sample.
                self.hunt_from = edge + 0.5 * self.bit
                continue
            value = 0
            for k in range(self.fmt.data):
                if line.level(edge + (1.5 + k) * self.bit):
                    value |= 1 << k
            if self.fmt.parity != "N":
                _ = line.level(edge + (1.5 + self.fmt.data) * self.bit)
            stop = line.level(stop_at)
            if stop == 0:
                self.framing_errors += 1
                if value == 0:
                    self.breaks += 1
            out.append(value)
            # Resynchronise: the next character starts at the next falling edge after the
            # stop sample (for a break, after the line has gone back to 1).
            self.hunt_from = stop_at
        return out


# ---- corpus mode -----------------------------------------------------------------------------

RATES = [1200, 2400, 4800, 9600, 14400, 19200, 38400, 57600, 74880, 115200, 230400, 460800,
         921600]


def device_line(rate, kind, rng, until, fmt, ppm):
    """A device sending `kind` units with idle gaps of 2-10 character times until `until`."""
    line = Line(rate, fmt, ppm)
    units = payload_units(kind, rng)
    i = rng.randrange(len(units))
    t = rng.random() * 0.01
    char = fmt.length() * line.bit
    while t < until:
        t = line.send(t, units[i % len(units)])
        i += 1
        t += (2 + 8 * rng.random()) * char
    return line


def corpus(args):
    fmt = Format("8N1")
    rates = RATES if not args.rates else [int(r) for r in args.rates.split(",")]
    for kind in args.payloads.split(","):
        for seed in range(args.seeds):
            for dev in rates:
                for rx in rates:
                    if abs(dev / rx - 1.0) < 0.05:
                        continue
                    rng = random.Random(f"{kind}/{dev}/{rx}/{seed}")
                    ppm = (rng.random() - 0.5) * 2 * args.ppm
                    # One dwell: up to `dwell` characters at the receiver, at most 2 s.
                    span = min(2.0, args.dwell * 10.0 / rx * 1.5)
                    start = 0.005 + rng.random() * 0.02
                    line = device_line(dev, kind, rng, start + span + 0.01, fmt, ppm)
                    r = Receiver(rx, fmt)
                    r.hunt_from = start
                    got = r.receive(line, start + span, limit=args.dwell)
                    print(json.dumps({
                        "payload": kind, "device": dev, "receiver": rx, "seed": seed,
                        "hex": bytes(got).hex(), "framing_errors": r.framing_errors,
                        "breaks": r.breaks,
                    }))


# ---- pty mode ------------------------------------------------------------------------------

# struct termios2 (asm-generic): 4 tcflag_t, c_line, c_cc[19], c_ispeed, c_ospeed.
TCGETS2 = 0x802C542A
TERMIOS2_SIZE = 44


def port_speed(fd):
    """The output speed set on the tty `fd` (bit/s), read with TCGETS2 so that speeds set
    with BOTHER (74880) read back exactly."""
    raw = fcntl.ioctl(fd, TCGETS2, bytes(TERMIOS2_SIZE))
    return struct.unpack_from("I", raw, 40)[0]


def pty_mode(args):
    fmt = Format(args.format)
    rng = random.Random(args.seed)
    master, slave = os.openpty()
    tty.setraw(slave)
    name = os.ttyname(slave)
    os.set_blocking(master, False)
    if args.link:
        try:
            os.unlink(args.link)
        except FileNotFoundError:
            pass
        os.symlink(name, args.link)
    line = Line(args.rate, fmt, args.ppm)
    units = payload_units(args.payload, rng)
    char = fmt.length() * line.bit
    t0 = time.monotonic()
    heard = port_speed(slave) or args.rate
    rx = Receiver(heard if not args.ignore_rate else args.rate, fmt)
    log = open(args.log, "a", buffering=1) if args.log else None

    def say(msg):
        if log:
            log.write(f"{time.monotonic() - t0:9.3f} {msg}\n")

    say(f"device {args.rate} {fmt.data}{fmt.parity}{fmt.stop} payload {args.payload}; "
        f"port at {heard}{' (rate ignored)' if args.ignore_rate else ''}")
    print(f"ready {args.link or name}", flush=True)
    i, sent_until, pending = 0, 0.0, b""
    deadline = t0 + args.duration
    # Silent until the monitor has set the port (its first setting): bytes written before
    # it opened the port would wait in the pty's buffer and reach it as if received later.
    quiet = args.quiet_until_set
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        speed = port_speed(slave)
        if speed and speed != heard:
            heard = speed
            if not args.ignore_rate:
                rx.retune(speed, now)
                pending = b""  # what was decoded at the old rate and not yet delivered
            if quiet:
                quiet = False
                termios.tcflush(slave, termios.TCIFLUSH)
                sent_until = now
                rx.retune(rx.rate, now)
            say(f"port set to {speed}")
        if quiet:
            time.sleep(0.003)
            continue
        while sent_until < now + 0.05:
            sent_until = line.send(sent_until, units[i % len(units)])
            i += 1
            sent_until += (2 + 8 * rng.random()) * char
        pending += bytes(rx.receive(line, now))
        line.forget_before(rx.hunt_from)
        if pending:
            try:
                n = os.write(master, pending)
                pending = pending[n:]
            except BlockingIOError:
                # Nobody reads the port yet: a real UART's FIFO overflows the same way.
                pending = b""
        # Whatever hsmon sends goes nowhere (the device does not listen).
        r, _, _ = select.select([master], [], [], 0.003)
        if r:
            try:
                os.read(master, 4096)
            except OSError:
                pass
    say(f"done: framing errors {rx.framing_errors}, breaks {rx.breaks}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    c = sub.add_parser("corpus", help="garbage at every wrong rate pair, as JSON lines")
    c.add_argument("--payloads", default="text,mbus")
    c.add_argument("--rates", default="", help="comma-separated rates (default: 13 common)")
    c.add_argument("--seeds", type=int, default=1)
    c.add_argument("--dwell", type=int, default=256, help="receiver characters per dwell")
    c.add_argument("--ppm", type=float, default=15000.0, help="device clock error, +/- ppm")
    t = sub.add_parser("pty", help="a device behind a pseudo-terminal")
    t.add_argument("--rate", type=int, required=True, help="the device's true rate")
    t.add_argument("--format", default="8N1")
    t.add_argument("--payload", default="text", help="text or mbus")
    t.add_argument("--ppm", type=float, default=0.0)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--link", help="a symlink to the pty slave, for the test to open")
    t.add_argument("--ignore-rate", action="store_true",
                   help="behave like a plain pty: bytes do not change with the set rate")
    t.add_argument("--duration", type=float, default=120.0, help="seconds, then exit")
    t.add_argument("--quiet-until-set", action="store_true",
                   help="send nothing until the port's rate is first changed (the monitor "
                        "opened and set it)")
    t.add_argument("--log", help="append what the emulator did to this file")
    args = p.parse_args()
    if args.mode == "corpus":
        corpus(args)
    else:
        pty_mode(args)


if __name__ == "__main__":
    sys.exit(main())
