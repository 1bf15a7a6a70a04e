//! Things the product code may do in a few named files only, checked on
//! the source text (test code excluded, as for the import cycles): build a
//! gRPC `Status` or name a `tonic::Code` (the single mapping and the
//! api/transport edges), spawn a detached task with `tokio::spawn`
//! (everything long-lived goes to the node's task set; issue 10), and run
//! a closure on tokio's blocking pool with `spawn_blocking` (engine work
//! goes through the engine's call site, `engine::call_site`; issue 10).
//! Each allowed file carries its reason; a `spawn_blocking` file also its
//! number of calls, exactly. And name a crate only the command line needs
//! (`CLI_CRATES`, feature `cli`): the binary's files and `cli_tree` only.
//! Must not: build or run anything of the product.

use super::{is_test_file, product_code, rust_files};
use std::path::Path;

/// Files under `src/` that may build a `Status` (`Status::…`) or name a
/// gRPC code (`Code::…`, `tonic::Code`), and why. Everywhere else an error
/// is a typed variant that `crate::error` maps (the `?` / `.into()` of a
/// `GeokvError`, or `Status::from` of one, which is that mapping).
const STATUS_ALLOWED: &[(&str, &str)] = &[
    ("error.rs", "the single mapping of typed errors to Status"),
    (
        "error/codes.rs",
        "the single mapping's table: each error's code and whether it applied nothing",
    ),
    (
        "api/auth.rs",
        "the client port's interceptor refuses a call before it is decoded",
    ),
    (
        "node/limits.rs",
        "the tower layer refuses an oversized message before tonic decodes it",
    ),
    (
        "transport/encoded.rs",
        "a pre-encoded call's \"not ready\" status, as the generated client builds it",
    ),
    (
        "transport/error.rs",
        "classifies a peer's status once, into TransportError and PeerCode",
    ),
    (
        "transport/replica_batch.rs",
        "a batch entry's status to and from its wire form",
    ),
    (
        "transport/read_batch.rs",
        "a read batch's entry statuses and an answer too large to send",
    ),
    (
        "transport/stream.rs",
        "a stream that ended without the peer's status",
    ),
    (
        "transport/support.rs",
        "a peer that does not serve a call (UNIMPLEMENTED)",
    ),
    (
        "transport/tls.rs",
        "the internode TLS interceptor refuses a plaintext or unknown peer",
    ),
];

/// Files under `src/` that may call `tokio::spawn` (a task the node's stop
/// does not end), and why. A long-lived task goes to the node's task set
/// (`node::tasks`) or through `crate::tasks::Spawner`.
const SPAWN_ALLOWED: &[(&str, &str)] = &[
    (
        "tasks.rs",
        "the Spawner's detached mode, for tools and unit tests with no node",
    ),
    (
        "node/internode/streams.rs",
        "a hinted stream's relay, one per call: ends with the peer's stream",
    ),
    (
        "coordinator/newer_view.rs",
        "the shared layout fetch (one per peer and version, also the refresh after a refusal), bounded by FETCH_WITHIN (2 s) and outliving the request that started it (the coordinator has no Spawner yet)",
    ),
    (
        "coordinator/read.rs",
        "a read repair's write, bounded by the request timeout",
    ),
    (
        "coordinator/write/fan_out.rs",
        "a write's replica calls and stream waits, bounded by its deadline",
    ),
    (
        "coordinator/write/replica_call.rs",
        "a replica call's intent cleanup (one local delete) after its acknowledgement, so a RocksDB stall does not hold the fan-out",
    ),
    (
        "security/auth/mod.rs",
        "an argon2 verdict's settling (throttle refund, cache), one per run, bounded by the verification places; outlives a caller that gave up",
    ),
    (
        "hints/deliver.rs",
        "a pump's fetch of a newer layout, one at a time, held by the pump",
    ),
    (
        "hints/receive/fan.rs",
        "a received batch's stragglers, bounded by the replica deadlines",
    ),
    (
        "transport/admin_client.rs",
        "drives one HTTP/1 exchange's connection, ended with it",
    ),
    (
        "transport/stream.rs",
        "an outbound stream's relays: end when the stream is dropped",
    ),
    (
        "transport/tls.rs",
        "the TLS material's reload loop, until the shutdown signal",
    ),
    (
        "transport/tls/incoming.rs",
        "the TLS accept loop and its handshakes: end when the server drops it",
    ),
    (
        "transport/tls/recheck.rs",
        "a connection's certificate recheck, stopped when it closes",
    ),
];

/// Files under `src/` that may call `spawn_blocking`, how many times (no
/// more, no fewer: a new call in an allowed file fails as one elsewhere,
/// and an entry whose calls moved away must go), and why. Engine work runs
/// where the engine's call site puts it (`CallSite::run`, in the caller's
/// span).
const BLOCKING_ALLOWED: &[(&str, usize, &str)] = &[
    (
        "engine/call_site.rs",
        1,
        "the engine's call site: where engine work runs (CallSite::BlockingPool)",
    ),
    (
        "admin/auth_routes.rs",
        1,
        "argon2 hashing of a role's new secret (CPU work for ~0.1 s, not engine work; the change's synced save runs behind CallSite)",
    ),
    (
        "security/auth/verify.rs",
        1,
        "an argon2 verification run: CPU work bounded by the verification places; its JoinHandle is the run that Verifier::start returns",
    ),
];

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Each `token` in `code` that starts a path (not the tail of a longer
/// name such as `JobStatus::`), with the identifier that follows it.
fn uses<'c>(code: &'c str, token: &str) -> Vec<&'c str> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(token) {
        if code[..i].chars().next_back().is_some_and(ident_char) {
            continue;
        }
        let rest = &code[i + token.len()..];
        let end = rest.find(|c: char| !ident_char(c)).unwrap_or(rest.len());
        out.push(&rest[..end]);
    }
    out
}

/// The gRPC status and code uses of `code` that only the allowed files may
/// have: `Status::x` (other than `from`, the mapping, and `default`, which
/// tonic's `Status` has not: another type's), `Code::x`, `tonic::Code`.
fn status_uses(code: &str) -> Vec<String> {
    let status = (uses(code, "Status::").into_iter())
        .filter(|f| !matches!(*f, "from" | "default"))
        .map(|f| format!("Status::{f}"));
    let codes = uses(code, "Code::")
        .into_iter()
        .map(|c| format!("Code::{c}"));
    let named = uses(code, "tonic::Code")
        .into_iter()
        .map(|_| "tonic::Code".into());
    status.chain(codes).chain(named).collect()
}

/// Every product file under `src/` (relative path, product code).
fn product_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut out = Vec::new();
    for path in files {
        let rel = path.strip_prefix(&src).expect("under src");
        if is_test_file(rel) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source file");
        out.push((rel.display().to_string(), product_code(&text)));
    }
    assert!(
        out.len() > 100,
        "the walk found too few files: {}",
        out.len()
    );
    out
}

#[test]
fn grpc_statuses_are_built_only_by_the_mapping_and_the_edges() {
    let allowed = |f: &str| STATUS_ALLOWED.iter().any(|(a, _)| *a == f);
    let found: Vec<String> = (product_files().into_iter())
        .filter(|(rel, _)| !allowed(rel))
        .filter_map(|(rel, code)| {
            let used = status_uses(&code);
            (!used.is_empty()).then(|| format!("{rel}: {used:?}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a Status or gRPC code outside the single mapping (crate::error) and \
         the edges it allows; give the case a GeokvError variant instead:\n{}",
        found.join("\n")
    );
}

/// Each `tokio::spawn(` / `tokio::task::spawn(` of `code`.
fn detached_spawns(code: &str) -> usize {
    ["tokio::spawn(", "tokio::task::spawn("]
        .iter()
        .map(|t| uses(code, t).len())
        .sum()
}

#[test]
fn detached_tasks_are_spawned_only_where_allowed() {
    let allowed = |f: &str| SPAWN_ALLOWED.iter().any(|(a, _)| *a == f);
    let found: Vec<String> = (product_files().into_iter())
        .filter(|(rel, _)| !allowed(rel))
        .filter_map(|(rel, code)| {
            let n = detached_spawns(&code);
            (n > 0).then(|| format!("{rel}: {n} tokio::spawn"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a detached task outside the allowed files; hand it to the node's \
         task set (crate::tasks::Spawner) instead:\n{}",
        found.join("\n")
    );
}

/// Each `spawn_blocking(` or `spawn_blocking::<` of `code`
/// (`tokio::task::…`, a runtime's, or imported).
fn blocking_calls(code: &str) -> usize {
    ["spawn_blocking(", "spawn_blocking::<"]
        .iter()
        .map(|t| uses(code, t).len())
        .sum()
}

#[test]
fn blocking_calls_run_only_where_allowed() {
    let allowed = |f: &str| (BLOCKING_ALLOWED.iter()).find_map(|(a, n, _)| (*a == f).then_some(*n));
    let found: Vec<String> = (product_files().into_iter())
        .filter_map(|(rel, code)| {
            let (n, cap) = (blocking_calls(&code), allowed(&rel).unwrap_or(0));
            (n != cap).then(|| format!("{rel}: {n} spawn_blocking, {cap} allowed"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a spawn_blocking the allow-list does not count; run engine work \
         through the engine's call site (crate::engine::CallSite::run) \
         instead, or allow the call with its reason (and an entry whose \
         calls moved away goes):\n{}",
        found.join("\n")
    );
}

/// The crates only the `geokv` binary's command line needs (Cargo feature
/// `cli`, which the binary requires): the library builds without them.
const CLI_CRATES: &[&str] = &["clap::", "clap_complete::", "indicatif::", "comfy_table::"];

/// Where they may be named: the binary (`main.rs`, `cli/`) and the one
/// library module behind the feature, `cli_tree`.
fn cli_file(rel: &str) -> bool {
    rel == "main.rs" || rel == "cli_tree.rs" || rel.starts_with("cli/")
}

/// Each use of a command-line crate in `code`.
fn cli_uses(code: &str) -> Vec<&'static str> {
    (CLI_CRATES.iter().copied())
        .flat_map(|c| std::iter::repeat_n(c, uses(code, c).len()))
        .collect()
}

/// The library without `cli` (`--no-default-features --features server`,
/// as an embedding of the node would build it) needs no command-line
/// crate (issue 10); `scripts/test` does not build that configuration.
#[test]
fn command_line_crates_are_named_only_by_the_command_line() {
    let found: Vec<String> = (product_files().into_iter())
        .filter(|(rel, _)| !cli_file(rel))
        .filter_map(|(rel, code)| {
            let used = cli_uses(&code);
            (!used.is_empty()).then(|| format!("{rel}: {used:?}"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "a command-line crate named outside the binary's files; the library \
         must build without the `cli` feature:\n{}",
        found.join("\n")
    );
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("a lib.rs");
    assert!(
        lib.contains("#[cfg(feature = \"cli\")]\npub mod cli_tree;"),
        "cli_tree (clap) is built only with the `cli` feature"
    );
    assert_eq!(
        cli_uses("use clap::Parser; x: indicatif::ProgressBar; geokv_clap::y; myclap::z"),
        ["clap::", "indicatif::"]
    );
}

#[test]
fn the_status_check_sees_a_planted_status_and_not_other_types() {
    let code = "let s = tonic::Status::internal(x); Err(Status::invalid_argument(e))?;\n\
                let j = JobStatus::default(); let c = ExitCode::SUCCESS; s.code() == tonic::Code::Ok;\n\
                Status::from(e); ..Status::default()";
    assert_eq!(
        status_uses(code),
        [
            "Status::internal",
            "Status::invalid_argument",
            "Code::Ok",
            "tonic::Code"
        ]
    );
    let spawns = "tokio::spawn(a); tokio::task::spawn(b); set.spawn(c); my_tokio::spawn(d)";
    assert_eq!(detached_spawns(spawns), 2);
    let blocking = "tokio::task::spawn_blocking(a); rt.spawn_blocking(b); my_spawn_blocking(c); \
                    task::spawn_blocking::<_, u8>(d)";
    assert_eq!(blocking_calls(blocking), 3);
    let files: Vec<(String, String)> = product_files();
    let lists = [STATUS_ALLOWED, SPAWN_ALLOWED];
    let blocking = BLOCKING_ALLOWED.iter().map(|(f, _, why)| (*f, *why));
    for (file, _) in lists.iter().flat_map(|l| l.iter().copied()).chain(blocking) {
        assert!(
            files.iter().any(|(rel, _)| rel == file),
            "{file} is allowed but no longer exists: drop it from the list"
        );
    }
}
