//! Product texts cite public sources only (issue 18, item 3).
//!
//! What hsmon shows a user — the knowledge base, the handshake profiles and demo data under
//! `assets/`, and every string in `src/` (messages, help, explanations) — must not point at
//! files the repository does not ship (the development notes `protocols.md`, `iso7816.md`,
//! `pcsc.md`, `DESIGN.md`, `STYLE.md`, anything under `shared/reference`), at the notes'
//! verification tags (`[SIM]`, `[U]`), or at paths of a development machine. And every
//! knowledge entry names its source in `reference`.
//!
//! Scope of the `src/` scan: string literals everywhere, plus the `///` doc comments of
//! `src/cli.rs`, which clap turns into `--help`. Other comments are developer notes that no
//! user sees (`//!` module docs included: clap takes the program's `about` from Cargo.toml), so
//! they are not scanned; this file itself lives in `tests/` and is not scanned either, which is
//! why it may spell the patterns out.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::fs;
use std::path::{Path, PathBuf};

use hsmon::diagnose::knowledge::Knowledge;

/// References to unshipped files, internal verification tags and local paths.
const FORBIDDEN: &[&str] = &[
    "protocols.md",
    "iso7816.md",
    "pcsc.md",
    "DESIGN.md",
    "STYLE.md",
    "shared/reference",
    "../shared",
    "[SIM]",
    "[U]",
    "/work/",
    "/home/",
    "/root/",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every regular file under `dir`, sorted, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The forbidden patterns in `text`, each with `label` (file and line).
fn offences(label: &str, text: &str) -> Vec<String> {
    FORBIDDEN
        .iter()
        .filter(|p| text.contains(*p))
        .map(|p| format!("{label}: {p:?} in {:?}", text.trim()))
        .collect()
}

/// A piece of Rust source a user can see: its first line (1-based) and its text.
struct Shown {
    line: usize,
    text: String,
}

/// String literals of a Rust file (plain, byte and raw, escapes left as written), and with
/// `help_docs` also its `///` doc comments. Comments are skipped, char literals and lifetimes
/// are told apart from string quotes.
fn shown_texts(src: &str, help_docs: bool) -> Vec<Shown> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && next == Some('/') {
            let start = i;
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
            let comment: String = c[start..i].iter().collect();
            if help_docs && comment.starts_with("///") && !comment.starts_with("////") {
                out.push(Shown {
                    line,
                    text: comment,
                });
            }
        } else if ch == '/' && next == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !ident(c[i - 1]) || (c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))))
        {
            // Raw string r"…", r#"…"#, br"…".
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                i += 1;
                continue;
            }
            let (start_line, start) = (line, j + 1);
            j += 1;
            loop {
                match c.get(j) {
                    None => break,
                    Some('"') if (1..=hashes).all(|k| c.get(j + k) == Some(&'#')) => break,
                    Some('\n') => line += 1,
                    _ => {}
                }
                j += 1;
            }
            out.push(Shown {
                line: start_line,
                text: c[start..j.min(c.len())].iter().collect(),
            });
            i = j + 1 + hashes;
        } else if ch == '"' {
            let (start_line, start) = (line, i + 1);
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                if c.get(j) == Some(&'\n') {
                    line += 1;
                }
                j += 1;
            }
            out.push(Shown {
                line: start_line,
                text: c[start..j.min(c.len())].iter().collect(),
            });
            i = j + 1;
        } else if ch == '\'' {
            // '\n', '\'', '\u{..}' or 'x' are char literals; 'a (no closing quote) a lifetime.
            if next == Some('\\') {
                let mut j = i + 2;
                while j < c.len() && c[j] != '\'' {
                    j += 1;
                }
                if c.get(i + 2) == Some(&'\'') {
                    j = i + 3;
                    while j < c.len() && c[j] != '\'' {
                        j += 1;
                    }
                }
                i = j + 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn assets_cite_no_internal_notes_tags_or_local_paths() {
    let mut bad = Vec::new();
    let files = files_under(&root().join("assets"));
    assert!(files.iter().any(|f| f.ends_with("knowledge.toml")));
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue; // binary data has no citations
        };
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, l) in text.lines().enumerate() {
            bad.extend(offences(&format!("{name}:{}", n + 1), l));
        }
    }
    assert!(
        bad.is_empty(),
        "internal references in assets:\n{}",
        bad.join("\n")
    );
}

#[test]
fn source_strings_and_help_cite_no_internal_notes_tags_or_local_paths() {
    let mut bad = Vec::new();
    let mut scanned = 0;
    for file in files_under(&root().join("src")) {
        if file.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("source is UTF-8");
        let name = file
            .strip_prefix(root())
            .unwrap_or(&file)
            .display()
            .to_string();
        let help_docs = name.replace('\\', "/") == "src/cli.rs";
        for shown in shown_texts(&text, help_docs) {
            scanned += 1;
            bad.extend(offences(&format!("{name}:{}", shown.line), &shown.text));
        }
    }
    assert!(scanned > 1000, "the scanner found only {scanned} strings");
    assert!(
        bad.is_empty(),
        "internal references in src strings:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scanner_sees_strings_and_help_but_not_comments() {
    let src = concat!(
        "//! module note: DESIGN.md\n",
        "// note: protocols.md\n",
        "/* block: [SIM] */\n",
        "/// help: see STYLE.md\n",
        "fn f<'a>(x: &'a str) -> char { let _ = r#\"raw \"q\" /work/\"#; '\"' }\n",
        "const S: &str = \"a \\\"quoted\\\" [U]\";\n",
        "const B: &[u8] = b\"/home/x\";\n",
    );
    let texts: Vec<String> = shown_texts(src, true).into_iter().map(|s| s.text).collect();
    assert_eq!(
        texts,
        vec![
            "/// help: see STYLE.md".to_string(),
            "raw \"q\" /work/".to_string(),
            "a \\\"quoted\\\" [U]".to_string(),
            "/home/x".to_string(),
        ]
    );
    let lines: Vec<usize> = shown_texts(src, false)
        .into_iter()
        .map(|s| s.line)
        .collect();
    assert_eq!(lines, vec![5, 6, 7]);
}

#[test]
fn every_knowledge_entry_has_a_reference() {
    let raw = fs::read_to_string(root().join("assets/knowledge.toml")).expect("knowledge.toml");
    let declared = raw.lines().filter(|l| l.trim() == "[[entry]]").count();
    let k = Knowledge::embedded().expect("the built-in knowledge base loads");
    assert_eq!(k.entries().len(), declared, "every [[entry]] is loaded");
    let missing: Vec<&str> = k
        .entries()
        .iter()
        .filter(|e| e.reference.trim().is_empty())
        .map(|e| e.id.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "entries without a reference: {missing:?}"
    );
    for e in k.entries() {
        let bad = offences(&e.id, &e.reference);
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }
}
