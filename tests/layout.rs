//! The crate's layout rule (CONTRIBUTING.md, "Layout of the code"): imports flow one way, from
//! the front doors down to the kernel and the disk. This reads every `crate::MODULE` path in
//! `src/` and fails on an import cycle between the crate's top-level modules, naming it, and
//! when any module imports `cli` (parsed by `main` alone).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module of a source file: `src/ipam/files.rs` -> `ipam`; `src/lib.rs` -> None.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `crate::NAME` in the text of `code` (comments included: a doc link is an import of
/// knowledge too, and costs nothing to keep honest).
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `ipvlan_hook_crate::`
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `crate::{a, b}` groups are not used in this crate; a group would show up as "".
        assert!(!name.is_empty(), "write one `use crate::MODULE` per module");
        found.insert(name);
    }
    found
}

/// The checkout's `src/`; None, said loudly, inside the VM run, which carries test binaries
/// and not the checkout (the host run checks the layout).
fn src_dir(test: &str) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if src.is_dir() {
        return Some(src);
    }
    assert!(
        std::env::var_os("IPVLAN_HOOK_VM").is_some(),
        "{test}: {} does not exist",
        src.display()
    );
    eprintln!(
        "SKIPPED {test}: the VM carries test binaries, not the checkout; the host run checks it"
    );
    None
}

fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(src, file) else {
            continue;
        };
        let code = std::fs::read_to_string(file).expect("read source");
        let deps = edges.entry(from.clone()).or_default();
        for to in crate_paths(&code) {
            // Items of lib.rs itself (`crate::info`, the `bail!` macro) are leaves.
            if to != from && modules.contains(&to) {
                deps.insert(to);
            }
        }
    }
    edges
}

/// A cycle through `start`, as a path of module names, if there is one.
fn cycle_from(
    edges: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
) -> bool {
    for next in edges.get(at).into_iter().flatten() {
        if next == start {
            path.push(next.clone());
            return true;
        }
        if path.contains(next) {
            continue;
        }
        path.push(next.clone());
        if cycle_from(edges, start, next, path) {
            return true;
        }
        path.pop();
    }
    false
}

#[test]
fn imports_between_modules_have_no_cycle() {
    let Some(src) = src_dir("imports_between_modules_have_no_cycle") else {
        return;
    };
    let edges = graph(&src);
    assert!(
        edges.len() > 10,
        "the scan found too few modules: {edges:?}"
    );
    for start in edges.keys() {
        let mut path = vec![start.clone()];
        if cycle_from(&edges, start, start, &mut path) {
            panic!(
                "import cycle: {} (move what both need into a module below them)",
                path.join(" -> ")
            );
        }
    }
}

#[test]
fn nothing_imports_the_cli() {
    let Some(src) = src_dir("nothing_imports_the_cli") else {
        return;
    };
    for (from, deps) in graph(&src) {
        assert!(
            !deps.contains("cli"),
            "module {from} imports cli: only main.rs and bin/ may; pass what it needs as arguments"
        );
    }
}

#[test]
fn the_scan_sees_paths() {
    let found = crate_paths("use crate::netlink::Rtnl;\nlet x = crate::dirs::POLICY; my_crate::x");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["dirs", "netlink"]);
}
