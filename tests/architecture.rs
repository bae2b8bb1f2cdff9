//! The shape of the workspace, checked: the crate dependencies are exactly the ones
//! docs/architecture.md lists and point one way, no crate reaches into another's daemon
//! shell, no crate has a cycle between its modules, and no source file grows past ~600
//! lines without saying why at its top. Runs without root and without a network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `deps` block of docs/architecture.md: `crate: dep dep ...`, lowest layer first.
fn documented() -> Vec<(String, BTreeSet<String>)> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let block = doc
        .split("```deps\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```deps block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, deps) = l.split_once(':').expect("`crate: deps` lines");
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            (name.trim().to_owned(), deps)
        })
        .collect()
}

/// Workspace packages and their workspace dependencies: (normal, dev).
fn actual() -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {out:?}");
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
            for d in p["dependencies"].as_array().unwrap() {
                let name = d["name"].as_str().unwrap().to_owned();
                if !names.contains(&name) {
                    continue;
                }
                match d["kind"].as_str() {
                    Some("dev") => dev.insert(name),
                    _ => normal.insert(name),
                };
            }
            (p["name"].as_str().unwrap().to_owned(), (normal, dev))
        })
        .collect()
}

#[test]
fn crate_dependencies_are_the_documented_ones_and_point_one_way() {
    let doc = documented();
    let actual = actual();
    let rank: BTreeMap<&str, usize> = doc
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let listed: BTreeSet<&str> = rank.keys().copied().collect();
    let present: BTreeSet<&str> = actual.keys().map(String::as_str).collect();
    assert_eq!(
        listed, present,
        "docs/architecture.md's deps block and the workspace name different crates"
    );
    for (name, deps) in &doc {
        let (normal, dev) = &actual[name];
        assert_eq!(
            deps, normal,
            "{name}: docs/architecture.md says it depends on {deps:?}, Cargo.toml on {normal:?}"
        );
        for d in normal.iter().chain(dev) {
            assert!(
                rank[d.as_str()] < rank[name.as_str()],
                "{name} depends on {d}, which the deps block lists after it: dependencies must point to lower layers"
            );
        }
    }
}

/// Source files of the workspace, with the package directory they belong to.
fn sources() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | "fuzz" | ".git") {
                    walk(&p, out);
                }
            } else if name.ends_with(".rs") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for top in ["src", "crates", "netns-tests", "bench", "tests"] {
        walk(&root().join(top), &mut out);
    }
    out
}

/// Test code: integration tests, `tests.rs` / `tests/` modules, examples, benches.
fn is_test(p: &Path) -> bool {
    let rel = p.strip_prefix(root()).unwrap();
    rel.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "e2e" | "examples" | "benches")
        )
    }) || rel.file_name().is_some_and(|f| f == "tests.rs")
}

/// The file's text before its inline `#[cfg(test)]` module, if any.
fn non_test_part(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod ")
        .map_or(text, |i| &text[..i + 1])
}

#[test]
fn no_crate_reaches_into_another_crates_daemon_shell() {
    // The shells are wired together by the binary (src/) alone.
    let shells = [
        ("igmpd_querier::shell", "crates/querier"),
        ("igmpd_snooping::shell", "crates/snooping"),
    ];
    let mut bad = Vec::new();
    for p in sources() {
        let rel = p
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "tests/architecture.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for (path, home) in shells {
            if text.contains(path) && !rel.starts_with(home) && !rel.starts_with("src/") {
                bad.push(format!("{rel} uses {path}"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn no_source_file_is_long_without_saying_why() {
    let mut long = Vec::new();
    for p in sources().into_iter().filter(|p| !is_test(p)) {
        let text = std::fs::read_to_string(&p).unwrap();
        let lines = non_test_part(&text).lines().count();
        let head: String = text.lines().take(20).collect::<Vec<_>>().join("\n");
        if lines > 600 && !head.contains("one concern") {
            long.push(format!("{} ({lines} lines)", p.display()));
        }
    }
    assert!(
        long.is_empty(),
        "split these by concern, or say at the top why one concern needs the length (\"one concern\"): {long:#?}"
    );
}

/// Module paths of a crate's `src/` files: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The module paths a file names through `crate::`, `super::` and `self::` in code
/// (comment lines, doc links included, are not dependencies).
fn references(module: &[String], is_mod_file: bool, text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let text = code.as_str();
    let here: Vec<String> = if is_mod_file {
        module.to_vec()
    } else {
        module[..module.len().saturating_sub(1)].to_vec()
    };
    let mut out = Vec::new();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", {
            let mut b = here.clone();
            if is_mod_file {
                b.pop();
            }
            b
        }),
        (
            "self::",
            if is_mod_file {
                here.clone()
            } else {
                module.to_vec()
            },
        ),
    ] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let before = rest[..i].chars().next_back();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path = base.clone();
            let mut tail = rest;
            loop {
                let name: String = tail
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || !name.starts_with(|c: char| c.is_lowercase()) {
                    break;
                }
                tail = &tail[name.len()..];
                path.push(name);
                match tail.strip_prefix("::") {
                    Some(t) => tail = t,
                    None => break,
                }
            }
            out.push(path);
        }
    }
    out
}

/// One source file for the cycle check: its module path, whether it is a `mod.rs` /
/// `lib.rs` / `main.rs`, and its non-test text.
type ModuleFile = (Vec<String>, bool, String);

/// A cycle between sibling modules (`a::b` naming `a::c::x` is an edge b -> c under `a`;
/// children naming their parent and parents naming their children are not edges).
fn find_cycle(files: &[ModuleFile]) -> Option<Vec<String>> {
    let modules: BTreeSet<&Vec<String>> = files.iter().map(|(m, _, _)| m).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (from, is_mod, text) in files {
        for to in references(from, *is_mod, text) {
            let k = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if k < from.len() && k < to.len() {
                let (a, b) = (from[..=k].to_vec(), to[..=k].to_vec());
                if modules.contains(&b) {
                    edges.entry(a).or_default().insert(b);
                }
            }
        }
    }
    fn visit(
        n: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        match state.get(n) {
            Some(2) => return None,
            Some(_) => {
                let at = stack.iter().position(|m| m == n).unwrap_or(0);
                let mut cycle = stack[at..].to_vec();
                cycle.push(n.clone());
                return Some(cycle);
            }
            None => {}
        }
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    edges.keys().find_map(|n| {
        visit(n, &edges, &mut state, &mut Vec::new())
            .map(|c| c.iter().map(|m| m.join("::")).collect())
    })
}

#[test]
fn no_crate_has_a_cycle_between_its_modules() {
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("src"))
        .collect();
    crates.push(root().join("src"));
    for src in crates.into_iter().filter(|s| s.is_dir()) {
        let files: Vec<ModuleFile> = sources()
            .into_iter()
            .filter(|p| p.starts_with(&src) && !is_test(p))
            .map(|f| {
                let is_mod = matches!(
                    f.file_name().and_then(|n| n.to_str()),
                    Some("mod.rs" | "lib.rs" | "main.rs")
                );
                let text = std::fs::read_to_string(&f).unwrap();
                (module_of(&src, &f), is_mod, non_test_part(&text).to_owned())
            })
            .collect();
        if let Some(cycle) = find_cycle(&files) {
            panic!("module cycle in {}: {}", src.display(), cycle.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // The check above must be able to fail: two sibling modules naming each other.
    let file = |m: &[&str], is_mod: bool, text: &str| -> ModuleFile {
        (
            m.iter().map(|s| s.to_string()).collect(),
            is_mod,
            text.into(),
        )
    };
    let cyclic = [
        file(&["x"], true, "mod a; mod b;"),
        file(&["x", "a"], false, "use super::b::Thing;"),
        file(&["x", "b"], false, "fn f() { crate::x::a::g() }"),
    ];
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["x::a".into(), "x::b".into(), "x::a".into()])
    );
    // Parents naming children and children naming their parent are no cycle.
    let fine = [
        file(
            &["shell"],
            true,
            "use self::family::Addr; use crate::core::Instant;",
        ),
        file(
            &["shell", "family"],
            false,
            "use super::QueryDaemon; use crate::core::Segment;",
        ),
        file(&["core"], true, "pub mod segment;"),
    ];
    assert_eq!(find_cycle(&fine), None);
}
