//! The house rules a compiler does not check, checked on the source tree:
//! no import cycle between the top-level modules of `src/`, nor between
//! those of the SDK crate (`crates/geokv-client/src/`) (a module is a
//! folder or a file directly under `src/`; an edge is any `crate::name`
//! path outside comments and test code, an item `lib.rs` re-exports, as
//! `crate::Client`, standing for its module), none either once the test
//! code's edges are added (but the few of `TEST_EDGES_ALLOWED`, each with
//! its reason), and no source file far over the ~400-line budget
//! (`MAX_LINES`: any Rust file of the repository).
//! What only a few named files may do (build a gRPC `Status`) is checked
//! in `confined`.
//! Must not: build or run anything of the product.

mod confined;
mod fn_length;
mod opening;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the modules it names, with the files that name them.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Test-only files: `tests/` folders, `tests.rs`, `tests_*.rs`,
/// `*_tests.rs`, `testing.rs`.
fn is_test_file(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str() == "tests")
        || rel.file_name().is_some_and(|f| {
            let f = f.to_string_lossy();
            f == "tests.rs"
                || f.starts_with("tests_")
                || f.ends_with("_tests.rs")
                || f == "testing.rs"
        })
}

/// Code without comments and without its trailing inline test module
/// (`#[cfg(test)]` then `mod tests {`, `mod refusal_tests {`, …).
fn product_code(text: &str) -> String {
    let inline = |(i, _): &(usize, &str)| {
        let rest = &text[i + "#[cfg(test)]\nmod ".len()..];
        rest.lines()
            .next()
            .is_some_and(|l| l.trim_end().ends_with('{'))
    };
    let cut = (text.match_indices("#[cfg(test)]\nmod "))
        .find(inline)
        .map_or(text.len(), |(i, _)| i);
    text[..cut]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Item → module for what `lib.rs` re-exports from its own modules
/// (`pub use self::core::Client;`, `pub use self::read::{Get, ReadOptions};`).
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use self::") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| c == '{' || c == '}').split(',') {
            out.insert(item.trim().to_string(), module.to_string());
        }
    }
    out
}

/// The module names following each `crate::` in `code` (each name of a
/// `crate::{a, B}` group): a lowercase name is a module, any other one
/// counts only if `reexports` maps it to its module.
fn crate_paths(code: &str, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        (s.trim_start().chars())
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        match rest.strip_prefix('{').and_then(|r| r.split_once('}')) {
            Some((group, _)) => names.extend(group.split(',').map(ident)),
            None => names.push(ident(rest)),
        }
    }
    let module = |n: String| match reexports.get(&n) {
        Some(m) => Some(m.clone()),
        None if n.starts_with(|c: char| c.is_ascii_lowercase()) => Some(n),
        None => None,
    };
    names.into_iter().filter_map(module).collect()
}

/// Code without its comment lines, test code included.
fn all_code(text: &str) -> String {
    (text.lines())
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module graph of `src`: product code only, or with test code too.
fn module_graph(src: &Path, with_tests: bool) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("a lib.rs");
    let reexports = reexports(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for path in files {
        let rel = path.strip_prefix(src).expect("under src");
        if is_test_file(rel) && !with_tests {
            continue;
        }
        let first = rel.components().next().expect("non-empty path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source file");
        let code = match with_tests {
            true => all_code(&text),
            false => product_code(&text),
        };
        for target in crate_paths(&code, &reexports) {
            if target != module {
                graph
                    .entry(module.clone())
                    .or_default()
                    .entry(target)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<BTreeSet<String>> {
    struct Walk<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        found: Vec<BTreeSet<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.graph.get(v).into_iter().flat_map(|m| m.keys()) {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let lw = self.low[w.as_str()];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(&w.as_str()) {
                    let iw = self.index[w.as_str()];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = BTreeSet::new();
                while let Some(w) = self.stack.pop() {
                    component.insert(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

fn describe(graph: &Graph, component: &BTreeSet<String>) -> String {
    let mut out = format!("cycle among {component:?}:\n");
    for a in component {
        for (b, files) in graph.get(a).into_iter().flatten() {
            if component.contains(b) {
                out += &format!("  {a} -> {b} in {files:?}\n");
            }
        }
    }
    out
}

/// No cycle among the top-level modules under `src` (of the repository).
fn assert_no_cycle(src: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(src);
    let graph = module_graph(&src, false);
    assert!(graph.len() > 5, "the walk found too few modules: {graph:?}");
    let found = cycles(&graph);
    let report: String = found.iter().map(|c| describe(&graph, c)).collect();
    assert!(found.is_empty(), "{report}");
    // The evidence for the notes (`-- --nocapture`): what was walked.
    eprintln!("{}: {}", src.display(), summary(&graph));
}

/// "N modules, M edges", and each module's edges: the import graph walked.
fn summary(graph: &Graph) -> String {
    let modules: BTreeSet<&String> = graph
        .iter()
        .flat_map(|(a, to)| to.keys().chain([a]))
        .collect();
    let edges: usize = graph.values().map(BTreeMap::len).sum();
    let mut out = format!("{} modules, {edges} edges, no cycle", modules.len());
    for (a, to) in graph {
        out += &format!(
            "\n  {a} -> {}",
            to.keys().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    out
}

/// Edges only test code draws that may close a cycle: (from, to, why).
/// A test that reaches up a layer goes to the module that owns what it
/// checks, or its helpers to a `testing` module below both.
const TEST_EDGES_ALLOWED: &[(&str, &str, &str)] = &[(
    "layout",
    "ring",
    "layout::testing::dev_join allocates a joiner's tokens with ring's \
     allocator, and ~20 tests in movement/ (another helper's at stop 29) \
     use it: it moves to ring::testing with them (issue 10)",
)];

/// Test rigs that reach upward blur the layers as much as product code
/// does (audit10-13, issue 10 #4): with the test code's edges, the only
/// cycles are those the allowed edges close.
#[test]
fn no_import_cycle_between_top_level_modules_with_test_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = module_graph(&src, true);
    for (from, to, why) in TEST_EDGES_ALLOWED {
        let edge = graph.get_mut(*from).and_then(|m| m.remove(*to));
        assert!(
            edge.is_some(),
            "{from} -> {to} is allowed ({why}) but no longer drawn"
        );
    }
    let found = cycles(&graph);
    let report: String = found.iter().map(|c| describe(&graph, c)).collect();
    assert!(found.is_empty(), "{report}");
    eprintln!("with test code, allowed edges out: {}", summary(&graph));
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    assert_no_cycle("src");
}

#[test]
fn no_import_cycle_between_the_sdk_files() {
    assert_no_cycle("crates/geokv-client/src");
}

/// The ~400-line budget with some slack: a file past it is split along its
/// concepts, not trimmed of comments.
const MAX_LINES: usize = 450;

#[test]
fn no_source_file_over_the_line_budget() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "fuzz", "examples", "benches"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    assert!(
        files.len() > 100,
        "the walk found too few files: {}",
        files.len()
    );
    let over: Vec<String> = files
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "target"))
        .filter_map(|p| {
            let lines = std::fs::read_to_string(p)
                .expect("readable")
                .lines()
                .count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", p.display()))
        })
        .collect();
    assert!(over.is_empty(), "over {MAX_LINES} lines: {over:?}");
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut graph = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(a.into())
            .or_default()
            .entry(b.into())
            .or_default()
            .insert(format!("{a}.rs"));
    }
    let found = cycles(&graph);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0],
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );
    let lib = "pub use self::core::Client;\npub use self::read::{Get, ReadOptions};";
    let reexports = reexports(lib);
    assert_eq!(
        reexports.get("ReadOptions").map(String::as_str),
        Some("read")
    );
    assert_eq!(
        crate_paths(
            "use crate::ring::Token; x(crate::a_b::c); use crate::{Client, Other, tls};",
            &reexports
        ),
        ["a_b", "core", "ring", "tls"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}
