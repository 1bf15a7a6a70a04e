//! The ~80-line budget of a function, checked on every Rust file of the
//! repository (product and tests): a function's lines run from its `fn`
//! line to its closing brace, counted by brace matching once comments,
//! strings and character literals are blanked. The functions over it
//! today are listed with their length as a cap and a reason each: one may
//! shrink, none may grow, and no other may join them.
//! Must not: build or run anything of the product.

use super::rust_files;
use std::path::Path;

/// The budget, in lines.
const MAX_FN_LINES: usize = 80;

/// Functions over the budget today: (file, function, cap, why).
const OVER_BUDGET: &[(&str, &str, usize, &str)] = &[
    (
        "tests/integration/auth.rs",
        "tokens_roles_and_permissions_hold_on_every_node",
        160,
        "one scenario: each grant and revoke checked on every node, in order",
    ),
    (
        "tests/integration/dev_cluster.rs",
        "dev_cluster_survives_a_node_and_is_operable_from_another_shell",
        109,
        "one scenario driving `geokv dev` from another shell, step by step, checking each --json answer",
    ),
    (
        "tests/integration/elastic.rs",
        "a_fourth_node_joins_dc1_under_local_quorum_writers_and_nothing_acked_is_lost",
        130,
        "a join under writers: start, join, stream, then every acked write checked",
    ),
    (
        "tests/integration/replace.rs",
        "a_killed_node_is_replaced_under_writers_and_nothing_acknowledged_is_lost",
        114,
        "a replacement under writers: kill, replace, stream, then every acked write checked",
    ),
    (
        "tests/integration/observability.rs",
        "metrics_endpoint_is_standard_prometheus",
        112,
        "the whole exposition checked family by family and by promtool",
    ),
    (
        "tests/integration/anti_entropy.rs",
        "repair_restores_what_a_dead_replica_missed",
        109,
        "one sequence: a dead replica, writes, restart, repair, each key read back",
    ),
    (
        "tests/integration/cluster_failures.rs",
        "levels_under_node_failures_and_restart_durability",
        106,
        "every level under each failure, then a restart: one table of cases",
    ),
    (
        "tests/integration/auth_throttle.rs",
        "wrong_credentials_are_throttled_after_ten_on_grpc_and_the_admin_port",
        93,
        "the throttle on both ports in one sequence of failed logins",
    ),
    (
        "tests/integration/geo_replication.rs",
        "remote_acknowledgements_come_through_the_stream",
        90,
        "the stream's acknowledgements across two datacenters, step by step",
    ),
    (
        "tests/integration/overload.rs",
        "a_node_past_its_in_flight_bound_sheds_with_a_hint_and_loses_nothing_acked",
        87,
        "a node past its bound: shed with a hint, then nothing acked lost",
    ),
    (
        "tests/integration/cluster_basics.rs",
        "bad_input_gets_precise_codes_and_leaves_data_untouched",
        85,
        "one case per kind of bad input, each checked against the data",
    ),
    (
        "tests/integration/layout_convergence.rs",
        "a_created_keyspace_converges_everywhere_and_a_restarted_node_catches_up",
        84,
        "a keyspace created, a node restarted, convergence checked on each node",
    ),
    (
        "tests/integration/ops_cli.rs",
        "repair_lag_and_status_report_the_live_cluster",
        83,
        "repair, lag and status on the live cluster, one command after another",
    ),
    (
        "tests/integration/tls.rs",
        "a_node_with_a_certificate_from_another_ca_is_never_counted_up",
        82,
        "a foreign-CA node watched over gossip rounds: never counted up",
    ),
];

/// `text` with comments, string and character literals blanked (their
/// newlines kept), so braces left are code.
fn blank(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let (mut out, mut i) = (String::with_capacity(text.len()), 0);
    let ident = |k: usize| k > 0 && (c[k - 1].is_alphanumeric() || c[k - 1] == '_');
    let newlines = |a: usize, b: usize| "\n".repeat(c[a..b].iter().filter(|&&x| x == '\n').count());
    let find = |from: usize, pat: &[char]| {
        (from..c.len())
            .find(|&k| c[k..].starts_with(pat))
            .map_or(c.len(), |k| k + pat.len())
    };
    while i < c.len() {
        let end = if c[i..].starts_with(&['/', '/']) {
            (i..c.len()).find(|&k| c[k] == '\n').unwrap_or(c.len())
        } else if c[i..].starts_with(&['/', '*']) {
            find(i + 2, &['*', '/'])
        } else if (c[i] == 'r' || c[i..].starts_with(&['b', 'r'])) && !ident(i) {
            let start = if c[i] == 'b' { i + 2 } else { i + 1 };
            let hashes = (start..c.len()).take_while(|&k| c[k] == '#').count();
            if c.get(start + hashes) == Some(&'"') {
                let mut close = vec!['"'];
                close.extend(std::iter::repeat_n('#', hashes));
                find(start + hashes + 1, &close)
            } else {
                i + 1
            }
        } else if c[i] == '"' {
            let mut k = i + 1;
            while k < c.len() && c[k] != '"' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            k + 1
        } else if c[i] == '\'' && c.get(i + 1) == Some(&'\\') {
            // An escape is two characters at least: `'\''`, `'\u{..}'`.
            find(i + 3, &['\''])
        } else if c[i] == '\'' && c.get(i + 2) == Some(&'\'') {
            i + 3
        } else {
            out.push(c[i]);
            i += 1;
            continue;
        };
        let end = end.min(c.len());
        if end == i + 1 {
            // An `r` or `b` that does not start a raw string.
            out.push(c[i]);
        } else {
            out.push_str(&newlines(i, end));
        }
        i = end;
    }
    out
}

/// The name of the function a line of blanked code starts, if it does.
fn fn_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(r) = rest.strip_prefix("pub") {
        let r = match r.strip_prefix('(') {
            Some(inner) => &inner[inner.find(')')? + 1..],
            None => r,
        };
        rest = r.strip_prefix(char::is_whitespace)?.trim_start();
    }
    loop {
        let before = rest.len();
        for q in ["const ", "async ", "unsafe ", "extern \"\" ", "extern "] {
            if let Some(r) = rest.strip_prefix(q) {
                rest = r.trim_start();
            }
        }
        if rest.len() == before {
            break;
        }
    }
    let r = rest.strip_prefix("fn ")?.trim_start();
    let end = r.find(|c: char| !(c.is_alphanumeric() || c == '_'));
    let name = &r[..end.unwrap_or(r.len())];
    (!name.is_empty()).then_some(name)
}

/// Every function with a body in `text`: (name, first line, lines).
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let code = blank(text);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let Some(name) = fn_name(line) else { continue };
        let (mut depth, mut started) = (0i64, false);
        let end = (k..lines.len()).find_map(|j| {
            for ch in lines[j].chars() {
                match ch {
                    '{' => (depth, started) = (depth + 1, true),
                    '}' => depth -= 1,
                    ';' if !started && depth == 0 => return Some(None),
                    _ => {}
                }
                if started && depth == 0 {
                    return Some(Some(j));
                }
            }
            None
        });
        if let Some(Some(j)) = end {
            out.push((name.to_string(), k + 1, j - k + 1));
        }
    }
    out
}

#[test]
fn no_function_over_the_line_budget() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "tests", "fuzz", "examples", "benches"] {
        if root.join(dir).is_dir() {
            rust_files(&root.join(dir), &mut files);
        }
    }
    let mut over = Vec::new();
    let mut seen = 0;
    for path in files
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "target"))
    {
        let rel = path
            .strip_prefix(root)
            .expect("under the root")
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("readable");
        for (name, line, n) in functions(&text) {
            seen += 1;
            let cap = (OVER_BUDGET.iter())
                .find(|(f, fun, _, _)| *f == rel && *fun == name)
                .map_or(MAX_FN_LINES, |(_, _, cap, _)| *cap);
            if n > cap {
                over.push(format!("{rel}:{line} {name}: {n} lines (at most {cap})"));
            }
        }
    }
    assert!(seen > 1000, "the walk found too few functions: {seen}");
    assert!(
        over.is_empty(),
        "over the function budget (split along its steps):\n{}",
        over.join("\n")
    );
}

#[test]
fn the_function_counter_skips_comments_strings_and_declarations() {
    let text = r##"
/// fn not_this() {
pub(crate) async fn outer(x: &str) -> u32 {
    let s = "}}} fn inner() {";
    let r = r#"{ " }"#;
    let c = '}';
    let e = '\'';
    let l: &'static str = "x";
    /* { */
    0
}
trait T {
    fn declared(&self);
}
fn one_line() {}
"##;
    let found = functions(text);
    assert_eq!(
        found,
        [("outer".to_string(), 3, 9), ("one_line".to_string(), 15, 1)]
    );
}
