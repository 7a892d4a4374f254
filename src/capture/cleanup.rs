//! Keeps hsmon's own capture directory bounded: at the start of a session that records there,
//! the oldest captures go until the directory is within the `[capture]` limits (total size, age,
//! number of files). [`select`] decides which files go and is pure (the clock is passed in);
//! [`prune`] lists the directory and deletes what it chose.
//!
//! Safety rules, all enforced here: only regular files directly in the directory (no symlinks,
//! no subdirectories), only files named `*.hscap` that start with the capture magic, never the
//! current session's file, and never a file written in the last [`RECENT`] (another hsmon may be
//! recording to it).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::format::MAGIC;

/// Files modified this recently are kept whatever the limits: another hsmon session may be
/// writing them (a live capture's mtime moves at least every flush while data flows).
pub const RECENT: Duration = Duration::from_secs(10 * 60);

/// The bounds on the capture directory (from `[capture]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total size of all captures, in bytes.
    pub max_total_bytes: u64,
    /// Captures last modified longer ago than this go.
    pub max_age: Duration,
    /// At most this many captures.
    pub max_files: usize,
}

/// One capture found in the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    pub modified: SystemTime,
}

/// Which captures to delete, oldest first: every one older than `max_age`, then the oldest of
/// the rest until both the count and the total size are within bounds. `keep` (the current
/// session's file) and files modified within [`RECENT`] of `now` are never chosen, but they
/// count towards the totals.
pub fn select(files: &[Capture], keep: &Path, now: SystemTime, limits: &Limits) -> Vec<PathBuf> {
    let mut sorted: Vec<&Capture> = files.iter().collect();
    sorted.sort_by(|a, b| {
        a.modified
            .cmp(&b.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    let age = |c: &Capture| now.duration_since(c.modified).unwrap_or(Duration::ZERO);
    let protected = |c: &Capture| c.path == keep || age(c) < RECENT;
    let mut count = sorted.len();
    let mut total: u64 = sorted.iter().map(|c| c.size).sum();
    let mut gone = Vec::new();
    for c in sorted {
        if protected(c) {
            continue;
        }
        let over = count > limits.max_files || total > limits.max_total_bytes;
        if over || age(c) > limits.max_age {
            count -= 1;
            total -= c.size;
            gone.push(c.path.clone());
        }
    }
    gone
}

/// What a [`prune`] did: files deleted, bytes freed, and files it could not delete (with why).
#[derive(Debug, Default)]
pub struct Pruned {
    pub deleted: usize,
    pub freed_bytes: u64,
    pub failed: Vec<(PathBuf, String)>,
}

/// Applies [`select`] to `dir`: lists its captures (see the module doc for what counts) and
/// deletes the chosen ones. A directory that cannot be read prunes nothing.
pub fn prune(dir: &Path, keep: &Path, now: SystemTime, limits: &Limits) -> Pruned {
    let files = list(dir);
    let mut done = Pruned::default();
    for path in select(&files, keep, now, limits) {
        let size = files.iter().find(|c| c.path == path).map_or(0, |c| c.size);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                done.deleted += 1;
                done.freed_bytes += size;
            }
            Err(e) => done.failed.push((path, e.to_string())),
        }
    }
    done
}

/// The hsmon captures directly in `dir`.
fn list(dir: &Path) -> Vec<Capture> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            // symlink_metadata: a link is not followed, so nothing outside `dir` is touched.
            let md = std::fs::symlink_metadata(&path).ok()?;
            let named = path.extension().is_some_and(|x| x == "hscap");
            if !md.file_type().is_file() || !named || !has_magic(&path) {
                return None;
            }
            Some(Capture {
                path,
                size: md.len(),
                modified: md.modified().ok()?,
            })
        })
        .collect()
}

/// Whether the file starts with the capture magic ([`MAGIC`]).
fn has_magic(path: &Path) -> bool {
    let mut head = [0u8; MAGIC.len()];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == MAGIC)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::UNIX_EPOCH;

    const DAY: u64 = 86_400;
    const MIB: u64 = 1 << 20;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn cap(name: &str, size: u64, days_old: u64) -> Capture {
        Capture {
            path: PathBuf::from(format!("/c/{name}")),
            size,
            modified: now() - Duration::from_secs(days_old * DAY),
        }
    }

    fn limits(mib: u64, days: u64, files: usize) -> Limits {
        Limits {
            max_total_bytes: mib * MIB,
            max_age: Duration::from_secs(days * DAY),
            max_files: files,
        }
    }

    fn names(v: &[PathBuf]) -> Vec<String> {
        v.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn within_limits_nothing_goes() {
        let files = [cap("a", MIB, 1), cap("b", MIB, 2)];
        let gone = select(&files, Path::new("/c/new"), now(), &limits(10, 30, 10));
        assert!(gone.is_empty());
    }

    #[test]
    fn old_captures_go_whatever_the_size() {
        let files = [cap("old", 1, 31), cap("young", 1, 29), cap("older", 1, 400)];
        let gone = select(&files, Path::new("/c/new"), now(), &limits(10, 30, 10));
        assert_eq!(names(&gone), ["/c/older", "/c/old"]);
    }

    #[test]
    fn the_oldest_go_first_until_the_total_fits() {
        // 3 + 4 + 5 MiB over a 6 MiB limit: the two oldest go, the newest alone fits.
        let files = [
            cap("c", 5 * MIB, 1),
            cap("a", 3 * MIB, 3),
            cap("b", 4 * MIB, 2),
        ];
        let gone = select(&files, Path::new("/c/new"), now(), &limits(6, 30, 10));
        assert_eq!(names(&gone), ["/c/a", "/c/b"]);
    }

    #[test]
    fn the_oldest_go_first_until_the_count_fits() {
        let files: Vec<Capture> = (1..=5).map(|d| cap(&format!("f{d}"), 1, d)).collect();
        let gone = select(&files, Path::new("/c/new"), now(), &limits(10, 30, 2));
        assert_eq!(names(&gone), ["/c/f5", "/c/f4", "/c/f3"]);
    }

    #[test]
    fn the_current_file_is_never_chosen_but_counts() {
        // The current capture is old by mtime (clock skew) and huge: it stays, and the others
        // go because it fills the budget.
        let files = [
            cap("cur", 100 * MIB, 90),
            cap("x", MIB, 2),
            cap("y", MIB, 1),
        ];
        let gone = select(&files, Path::new("/c/cur"), now(), &limits(50, 30, 10));
        assert_eq!(names(&gone), ["/c/x", "/c/y"]);
    }

    #[test]
    fn files_written_just_now_are_kept() {
        let mut live = cap("live", 100 * MIB, 0);
        live.modified = now() - Duration::from_secs(60);
        let files = [live, cap("x", MIB, 2)];
        let gone = select(&files, Path::new("/c/new"), now(), &limits(1, 30, 1));
        assert_eq!(names(&gone), ["/c/x"]);
        // A file from the future (clock changed) is recent too.
        let mut future = cap("future", 100 * MIB, 0);
        future.modified = now() + Duration::from_secs(DAY);
        let gone = select(&[future], Path::new("/c/new"), now(), &limits(1, 30, 1));
        assert!(gone.is_empty());
    }

    #[test]
    fn equal_times_are_ordered_by_name() {
        let files = [cap("b", 1, 5), cap("a", 1, 5)];
        let gone = select(&files, Path::new("/c/new"), now(), &limits(10, 30, 1));
        assert_eq!(names(&gone), ["/c/a"]);
    }

    #[test]
    fn prune_deletes_only_old_hsmon_captures_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let old = now() - Duration::from_secs(60 * DAY);
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(old)
                .unwrap();
            p
        };
        let mut capture = MAGIC.to_vec();
        capture.extend_from_slice(&[0; 32]);
        let gone = write("a.hscap", &capture);
        let foreign = write("notes.hscap", b"not a capture at all");
        let other_name = write("a.bin", &capture);
        let current = write("current.hscap", &capture);
        let sub = dir.path().join("sub.hscap");
        std::fs::create_dir(&sub).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("t.hscap");
        std::fs::write(&target, &capture).unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link.hscap")).unwrap();

        let done = prune(dir.path(), &current, now(), &limits(1024, 30, 500));
        assert_eq!(done.deleted, 1);
        assert_eq!(done.freed_bytes, capture.len() as u64);
        assert!(!gone.exists());
        for p in [&foreign, &other_name, &current, &sub, &target] {
            assert!(p.exists(), "{}", p.display());
        }
        assert!(dir.path().join("link.hscap").symlink_metadata().is_ok());
    }
}
