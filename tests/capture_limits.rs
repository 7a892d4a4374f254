//! Captures at start: `--capture` paths that cannot be created refused with exit 2.

mod support;

use std::process::Stdio;

use support::{hsmon_command, path_str};

#[test]
fn a_capture_path_that_cannot_be_created_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path()).to_string();
    let cases = [
        (d.as_str(), "the path is a directory"),
        ("/proc/x.hscap", "cannot create /proc/x.hscap"),
        // sysfs refuses new files, to root as well.
        ("/sys/x.hscap", "permission denied"),
    ];
    for (path, why) in cases {
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "--capture", path])
            .args(["demo", "tour", "--duration", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert_eq!(err.lines().count(), 1, "{path}: {err}");
        assert!(
            err.starts_with(&format!("hsmon: --capture {path}: ")),
            "{err}"
        );
        assert!(err.contains(why), "{path}: {err}");
        assert!(out.stdout.is_empty(), "{path}: the session did not start");
    }
    // An unwritable directory, where permissions apply (not as root).
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(ro.join("probe"), b"").is_err() {
        let cap = ro.join("x.hscap");
        let out = hsmon_command()
            .args(["--headless", "--config", "/dev/null", "--capture"])
            .arg(&cap)
            .args(["demo", "tour", "--duration", "1"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("permission denied"), "{err}");
    }
}
