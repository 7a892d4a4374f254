//! Per-framer throughput on a mixed stream (a quick look; the criterion bench is `framing`).
#![allow(clippy::unwrap_used)]
fn main() {
    let bench_src =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/framing.rs")).unwrap();
    let _ = bench_src;
    let mut data = Vec::new();
    let mut x: u32 = 1;
    while data.len() < (2 << 20) {
        data.extend_from_slice(&[0x68, 0x04, 0x0B, 0x00, 0x00, 0x00]);
        data.extend_from_slice(b"boot: hello, this is the boot log of a device\r\n");
        data.extend_from_slice(&[
            0x68, 0x15, 0x15, 0x68, 0x08, 0x02, 0x72, 0x78, 0x56, 0x34, 0x12, 0x24, 0x40, 0x01,
            0x07, 0x13, 0x00, 0x00, 0x00, 0x0C, 0x78, 0x04, 0x03, 0x02, 0x01, 0x9D, 0x16,
        ]);
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            data.push(x as u8);
        }
    }
    for mut f in hsmon::decode::framers() {
        let t = std::time::Instant::now();
        let mut out = Vec::new();
        for (i, c) in data.chunks(4096).enumerate() {
            f.feed((i * 4096) as u64, c, &mut out);
            out.clear();
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:?}: {:.1} MB/s",
            f.protocol(),
            data.len() as f64 / s / 1e6
        );
    }
}
