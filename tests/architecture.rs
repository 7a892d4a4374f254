//! The shape of `src/`: no import cycle between top-level modules, and pure cores.
//!
//! A top-level module is the first path component under `crate::` (`src/decode/…` is `decode`,
//! `src/hex.rs` is `hex`). The test reads every file under `src/`, drops test code and
//! comments, collects the `crate::x` paths each module names, and fails listing any cycle in
//! the resulting graph (`config → session → diagnose → config`). There is no allow-list:
//! ARCHITECTURE.md says which way each folder may import.
//!
//! What the simple scanner sees and misses:
//! - it counts `crate::x` anywhere in code (`use crate::x`, `crate::x::f()`, `crate::{x, y}`),
//!   not `super::super::…` paths that climb out of a module (none do today) or macros that
//!   build paths;
//! - test code is left out when it is a `#[cfg(test)]` item (`mod tests { … }`, a `use` or a
//!   `fn`) or a file that such a `mod name;` declares (`tests.rs` siblings); braces are counted
//!   per character, so a `{` or `}` inside a string literal in a test module can end the skip
//!   early or late;
//! - `//` comments are dropped (from `//` to the end of the line unless inside a string on the
//!   same line), so doc comments naming `crate::x` do not count; block comments are not.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// `decode` and `diagnose` are pure: no async runtime, no terminal, and nothing from the
/// modules that do I/O or hold the application together (DESIGN.md, STYLE.md "Pure cores").
const PURE_CORES: &[&str] = &["decode", "diagnose"];
const IMPURE_CRATES: &[&str] = &["tokio", "crossterm", "ratatui"];
/// Reading the clock: time is passed in (STYLE.md "Pure cores").
const CLOCK_READS: &[&str] = &["Instant::now", "SystemTime::now"];
const IMPURE_MODULES: &[&str] = &[
    "source", "ui", "app", "headless", "run", "sim", "capture", "config",
];

struct SourceFile {
    path: PathBuf,
    module: String,
    /// The file's code with comments and test items removed.
    code: String,
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let files = read_src();
    let mut graph: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in &files {
        graph.entry(f.module.clone()).or_default();
        for target in crate_paths(&f.code) {
            if target != f.module && target != "self" && target != "super" {
                graph
                    .entry(f.module.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(rel(&f.path));
            }
        }
    }

    let mut problems = Vec::new();
    let pruned = graph;
    for component in strongly_connected(&pruned) {
        if component.len() < 2 {
            continue;
        }
        let cycle = a_cycle(&pruned, &component);
        let mut text = cycle.join(" → ");
        for pair in cycle.windows(2) {
            let files: Vec<&String> = pruned[&pair[0]][&pair[1]].iter().collect();
            text.push_str(&format!("\n    {} → {} in {files:?}", pair[0], pair[1]));
        }
        problems.push(format!(
            "import cycle among {component:?}, for example {text}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn decode_and_diagnose_stay_pure() {
    let mut problems = Vec::new();
    for f in read_src() {
        if !PURE_CORES.contains(&f.module.as_str()) {
            continue;
        }
        for krate in IMPURE_CRATES {
            if mentions_crate(&f.code, krate) {
                problems.push(format!("{} uses {krate}", rel(&f.path)));
            }
        }
        for read in CLOCK_READS {
            if f.code.contains(read) {
                problems.push(format!("{} reads the clock ({read})", rel(&f.path)));
            }
        }
        for target in crate_paths(&f.code) {
            if IMPURE_MODULES.contains(&target.as_str()) {
                problems.push(format!("{} imports crate::{target}", rel(&f.path)));
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_scanner_sees_what_it_should() {
    let code = strip(
        "use crate::a::X;\n\
         use crate::{b, c::Y};\n\
         // crate::comment\n\
         fn f() { crate::d::g(\"//\"); } // crate::trailing\n\
         #[cfg(test)]\n\
         mod tests {\n    use crate::e;\n    fn t() { if x { crate::f(); } }\n}\n\
         #[cfg(test)]\n\
         use crate::g;\n\
         fn h() -> tokio::Handle { crate::h::i() }\n",
    )
    .0;
    let found: BTreeSet<String> = crate_paths(&code).into_iter().collect();
    let want: BTreeSet<String> = ["a", "b", "c", "d", "h"].map(String::from).into();
    assert_eq!(found, want, "{code}");
    assert!(mentions_crate(&code, "tokio"));
    assert!(!mentions_crate("let my_tokio = 1;", "tokio"));
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rel(path: &Path) -> String {
    path.strip_prefix(src_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Every `.rs` file under src/ except lib.rs, main.rs and the files of `#[cfg(test)] mod x;`.
fn read_src() -> Vec<SourceFile> {
    let mut paths = Vec::new();
    collect(&src_dir(), &mut paths);
    paths.sort();
    let mut test_files = BTreeSet::new();
    let mut files = Vec::new();
    for path in paths {
        let text = fs::read_to_string(&path).unwrap_or_default();
        let (code, test_mods) = strip(&text);
        // Where `mod x;` declared in this file lives: next to lib.rs/main.rs/mod.rs, else in
        // a folder named after the file.
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        let base = if matches!(stem, "lib" | "main" | "mod") {
            dir
        } else {
            dir.join(stem)
        };
        for name in test_mods {
            test_files.insert(base.join(format!("{name}.rs")));
            test_files.insert(base.join(&name).join("mod.rs"));
        }
        let relative = rel(&path);
        let first = relative.split('/').next().unwrap_or("");
        let module = first.strip_suffix(".rs").unwrap_or(first).to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        files.push(SourceFile { path, module, code });
    }
    files.retain(|f| !test_files.contains(&f.path));
    files
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code without `//` comments and without `#[cfg(test)]` items; also the names of
/// `#[cfg(test)] mod name;` declarations (test modules in their own files).
fn strip(text: &str) -> (String, Vec<String>) {
    let lines: Vec<String> = text.lines().map(drop_line_comment).collect();
    let mut out = String::new();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.starts_with("#[cfg(test)]") {
            // Skip further attributes, then the item.
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim().starts_with("#[") {
                j += 1;
            }
            let item = lines.get(j).map(|l| l.trim()).unwrap_or("");
            if let Some(name) = declared_mod(item) {
                test_mods.push(name);
                i = j + 1;
                continue;
            }
            i = skip_item(&lines, j);
            continue;
        }
        out.push_str(&lines[i]);
        out.push('\n');
        i += 1;
    }
    (out, test_mods)
}

/// `mod name;` (any visibility) → `name`.
fn declared_mod(item: &str) -> Option<String> {
    let rest = item.strip_suffix(';')?;
    let name = rest.rsplit_once("mod ")?.1.trim();
    (!name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

/// The line after the item starting at `start`: up to the `;` of a braceless item, or to the
/// brace that closes its first `{`.
fn skip_item(lines: &[String], start: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    for (k, line) in lines.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => depth -= 1,
                ';' if !opened => return k + 1,
                _ => {}
            }
        }
        if opened && depth <= 0 {
            return k + 1;
        }
    }
    lines.len()
}

fn drop_line_comment(line: &str) -> String {
    let mut in_string = false;
    let mut prev = '\0';
    let chars: Vec<char> = line.chars().collect();
    for (k, &c) in chars.iter().enumerate() {
        if c == '"' && prev != '\\' {
            in_string = !in_string;
        }
        if !in_string && c == '/' && chars.get(k + 1) == Some(&'/') {
            return chars[..k].iter().collect();
        }
        prev = c;
    }
    line.to_string()
}

/// The first component of every `crate::…` path, including each member of `crate::{a, b}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `hsmon_crate::` or similar, not our crate
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut member_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => member_start = true,
                    c if c.is_whitespace() => {}
                    _ if member_start => {
                        member_start = false;
                        found.push(ident(&group[k..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `krate::…` or `use krate` as a path root (not part of a longer identifier).
fn mentions_crate(code: &str, krate: &str) -> bool {
    code.match_indices(krate).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = &code[at + krate.len()..];
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            && (after.starts_with("::") || (after.starts_with(';') && code[..at].ends_with("use ")))
    })
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|t| t.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: BTreeSet<&str> = graph
        .iter()
        .flat_map(|(k, t)| std::iter::once(k.as_str()).chain(t.keys().map(String::as_str)))
        .collect();
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One cycle inside a strongly connected component, as a closed walk `a → b → … → a`
/// (breadth-first from its first module back to itself, so the shortest one).
fn a_cycle(
    graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    component: &[String],
) -> Vec<String> {
    let start = &component[0];
    let inside: BTreeSet<&String> = component.iter().collect();
    let mut came_from: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flat_map(|t| t.keys()) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                // Back from `v` to the start, then turned around and closed.
                let mut cycle = vec![v.clone()];
                let mut at = v;
                while at != start {
                    at = came_from[at];
                    cycle.push(at.clone());
                }
                cycle.reverse();
                cycle.push(start.clone());
                return cycle;
            }
            if !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.to_vec()
}
