//! The traffic the performance examples feed: the same 1 MiB block everywhere, so their
//! numbers speak of the same bytes.

/// 1 MiB of what a busy line carries: M-Bus long frames (with their 0x68 start bytes), text
/// lines, and noise. The same block, repeated, feeds every consumer.
pub fn traffic_block() -> Vec<u8> {
    const MBUS: [u8; 27] = [
        0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01, 0x07,
        0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
    ];
    let mut out = Vec::with_capacity(1 << 20);
    let mut x: u32 = 0x2545_f491;
    let mut n = 0u32;
    while out.len() < 1 << 20 {
        out.extend_from_slice(&MBUS);
        out.extend_from_slice(format!("boot: step {n:05} ok, temp 21.{}C\r\n", n % 10).as_bytes());
        for _ in 0..48 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.push(x as u8);
        }
        n += 1;
    }
    out.truncate(1 << 20);
    out
}
