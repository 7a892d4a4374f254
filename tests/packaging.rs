//! Packaging: the declared `rust-version` covers every locked dependency, and `hsmon
//! completions` / `hsmon man` produce what bash, zsh, fish, elvish, PowerShell and man accept.
//! Offline: cargo reads the registry already on disk. Missing tools (bash, groff, man) fail the
//! test; `scripts/setup.sh` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::run_hsmon;

/// "1.89" or "1.88.0" as (major, minor, patch).
fn rust_version(v: &str) -> (u32, u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
    (
        parts.next().unwrap(),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn declared_rust_version_covers_every_locked_dependency() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // This machine's platform only: crates for other targets (windows-sys, wasm-bindgen, ...)
    // are never downloaded by a build here, and --offline cannot fetch them.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    let rustc = String::from_utf8(rustc.stdout).unwrap();
    let host = rustc
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host");
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked --offline failed (is Cargo.lock out of date?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "hsmon" && p["source"].is_null())
        .expect("hsmon in cargo metadata");
    let declared = rust_version(
        ours["rust_version"]
            .as_str()
            .expect("hsmon declares rust-version"),
    );

    // Every package of the resolve for this platform, dev-dependencies included (tests and
    // benches must build with the declared toolchain too).
    let mut newer: Vec<String> = packages
        .iter()
        .filter(|p| !p["source"].is_null())
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            let (name, version) = (p["name"].as_str()?, p["version"].as_str()?);
            (rust_version(v) > declared).then(|| format!("{name} {version} needs {v}"))
        })
        .collect();
    newer.sort();
    assert!(
        newer.is_empty(),
        "Cargo.toml declares rust-version {}, but locked dependencies need more: {}",
        ours["rust_version"].as_str().unwrap_or("?"),
        newer.join(", ")
    );
    // The registry really was read: the dependencies that set the floor are there.
    assert!(
        packages
            .iter()
            .any(|p| p["name"] == "ratatui" && p["rust_version"].is_string()),
        "cargo metadata reported no rust_version for ratatui"
    );
}

const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

#[test]
fn completions_for_every_shell_name_the_subcommands() {
    for shell in SHELLS {
        let (code, out, err) = run_hsmon(&["completions", shell]);
        assert_eq!(code, 0, "hsmon completions {shell}: {err}");
        for sub in [
            "decode",
            "handshake",
            "serial",
            "card",
            "completions",
            "man",
        ] {
            assert!(
                out.contains(sub),
                "hsmon completions {shell} does not name `{sub}`:\n{out}"
            );
        }
    }
    let (code, _, err) = run_hsmon(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
}

#[test]
fn bash_accepts_the_bash_completion_script() {
    let (code, script, err) = run_hsmon(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hsmon.bash");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .expect("bash is needed for this test (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "bash -n rejects the completion script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sourcing it registers the completion function for hsmon.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source '{}' && complete -p hsmon", file.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("hsmon"),
        "sourcing the script registers no completion: {} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `program args` with `input` on stdin; returns (success, stdout, stderr).
fn pipe_through(program: &str, args: &[&str], input: &[u8]) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is needed for this test (scripts/setup.sh): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_man_page_is_roff_that_groff_and_man_render() {
    let out = support::hsmon_command()
        .arg("man")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = out.stdout;
    assert!(
        page.starts_with(b".ie") || page.starts_with(b".TH"),
        "not roff"
    );

    // groff with every warning on: valid roff renders without a complaint.
    let (ok, text, err) = pipe_through("groff", &["-man", "-Tutf8", "-ww", "-P-cbou"], &page);
    assert!(ok && err.is_empty(), "groff -man complains:\n{err}");
    for heading in ["NAME", "SYNOPSIS", "SUBCOMMANDS"] {
        assert!(text.contains(heading), "no {heading} section:\n{text}");
    }
    assert!(text.contains("hsmon"), "{text}");

    // And man itself, reading the page from stdin as `hsmon man | man -l -` does.
    let (ok, text, err) = pipe_through("man", &["-l", "-"], &page);
    assert!(ok, "man -l - fails: {err}");
    for heading in ["NAME", "SYNOPSIS"] {
        assert!(
            text.contains(heading),
            "man -l -: no {heading} section:\n{text}"
        );
    }
    assert!(
        text.contains("hsmon-decode"),
        "the subcommands are listed:\n{text}"
    );
}
