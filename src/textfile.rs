//! Reading the small text files a user hands hsmon (config, knowledge, profiles, APDU
//! scripts) with a size limit, so `--config /dev/zero` or a FIFO that never ends is an error
//! within one read of the limit instead of a read that never stops.

use std::io::Read;
use std::path::Path;

/// Largest config, knowledge, profile or script file read (1 MiB; the largest shipped one is
/// a few tens of KiB).
pub const MAX_TEXT_FILE: u64 = 1024 * 1024;

/// Reads `path` as UTF-8 text, failing with `InvalidData` once more than `limit` bytes came.
/// Devices and FIFOs are read the same way, so an endless one ends at the limit.
pub fn read_limited(path: &Path, limit: u64) -> std::io::Result<String> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is larger than {} KiB, the most hsmon reads from such a file (is it a device or an endless pipe?); give the text file itself",
                limit / 1024
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (byte {} is not); save it as UTF-8",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// [`read_limited`] with [`MAX_TEXT_FILE`].
pub fn read_text(path: &Path) -> std::io::Result<String> {
    read_limited(path, MAX_TEXT_FILE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_endless_device_stops_at_the_limit() {
        let e = read_limited(Path::new("/dev/zero"), 4096).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("larger than 4 KiB"), "{e}");
    }

    #[test]
    fn a_small_file_reads_whole() {
        let dir = std::env::temp_dir().join(format!("hsmon-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.toml");
        std::fs::write(&p, "a = 1\n").unwrap();
        assert_eq!(read_limited(&p, 6).unwrap(), "a = 1\n");
        assert!(read_limited(&p, 5).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
