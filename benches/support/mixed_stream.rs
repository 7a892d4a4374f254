//! The mixed byte stream the framing benchmark and `examples/framer_speed.rs` both measure:
//! what one direction of a busy, confused serial line carries.

/// `len` bytes (rounded up to a whole piece) cycling through an M-Bus long frame (27 bytes),
/// an IEC 104 U-frame (6), a DL/T 645 response (20), a boot-log text line (47) and 64 bytes of
/// xorshift garbage: 164 bytes per cycle, four real frames in it.
pub fn mixed_stream(len: usize) -> Vec<u8> {
    let pieces: [&[u8]; 5] = [
        &[
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ],
        &[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00],
        &[
            0x68, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x68, 0x91, 0x08, 0x33, 0x33, 0x34, 0x33,
            0x89, 0x67, 0x45, 0x33, 0x9F, 0x16,
        ],
        b"boot: hello, this is the boot log of a device\r\n",
        &[],
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut x: u32 = 0x1234_5678;
    let mut i = 0;
    while out.len() < len {
        let p = pieces[i % pieces.len()];
        if p.is_empty() {
            // 64 bytes of garbage.
            for _ in 0..64 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                out.push(x as u8);
            }
        } else {
            out.extend_from_slice(p);
        }
        i += 1;
    }
    out
}
