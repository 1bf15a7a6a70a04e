//! The house rule that every file opens with a comment saying what its
//! module owns and what it must not do, checked on the text: the leading
//! `//` / `//!` lines of every `.rs` under `src/` and `crates/*/src/`
//! must say "must not" (any case, across a line break). Test code (the
//! files `is_test_file` names: `tests/` folders, `tests.rs`, `tests_*.rs`,
//! `*_tests.rs`, `testing.rs`) is left out: what it must not do is its
//! module's, and its opening comment says what it checks.
//! Must not: build or run anything of the product.

use super::{is_test_file, rust_files};
use std::path::Path;

/// The leading comment lines of `text`, their markers stripped and joined
/// by spaces, lowercased.
fn opening_comment(text: &str) -> String {
    (text.lines())
        .take_while(|l| l.starts_with("//"))
        .map(|l| l.trim_start_matches(['/', '!']).trim())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The source folders checked: `src/` and each crate's `src/`.
fn source_roots(root: &Path) -> Vec<std::path::PathBuf> {
    let mut roots = vec![root.join("src")];
    for entry in std::fs::read_dir(root.join("crates")).expect("a crates folder") {
        let src = entry.expect("dir entry").path().join("src");
        if src.is_dir() {
            roots.push(src);
        }
    }
    roots
}

#[test]
fn every_product_file_opens_with_what_it_must_not_do() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut checked, mut missing) = (0, Vec::new());
    for src in source_roots(root) {
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for path in files {
            if is_test_file(path.strip_prefix(&src).expect("under src")) {
                continue;
            }
            checked += 1;
            let text = std::fs::read_to_string(&path).expect("readable source file");
            if !opening_comment(&text).contains("must not") {
                let rel = path.strip_prefix(root).expect("under the root");
                missing.push(rel.display().to_string());
            }
        }
    }
    assert!(checked > 150, "the walk found too few files: {checked}");
    assert!(
        missing.is_empty(),
        "no \"Must not\" in the opening comment (say what the module must \
         not do):\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_opening_comment_ends_at_the_first_line_of_code() {
    let text = "//! Owns a.\n//! Must\n//! not b.\nuse x;\n// must not (later)\n";
    assert_eq!(opening_comment(text), "owns a. must not b.");
    assert!(!opening_comment("use x;\n//! Must not: y.\n").contains("must not"));
}
