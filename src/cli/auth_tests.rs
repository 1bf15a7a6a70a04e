//! `geokv auth`'s parsing and printing: `--json` on every command, the
//! roles table, the last change as a date.

use super::*;
use clap::Parser;

#[derive(Parser)]
struct Auth {
    #[command(subcommand)]
    cmd: AuthCommand,
}

fn parse(args: &[&str]) -> AuthCommand {
    Auth::try_parse_from([&["auth"], args].concat())
        .unwrap()
        .cmd
}

#[test]
fn every_auth_command_takes_json_and_says_what_it_did() {
    let create = parse(&["create-role", "app", "--json"]);
    assert!(create.admin().json);
    assert_eq!(
        result_json(&create, Some("app:s3cret")),
        json!({"role": "app", "created": true, "cert_only": false, "token": "app:s3cret"})
    );
    let cert = parse(&["create-role", "svc", "--cert-only", "--json"]);
    assert_eq!(
        result_json(&cert, None),
        json!({"role": "svc", "created": true, "cert_only": true, "token": null})
    );
    let drop = parse(&["drop-role", "app", "--json"]);
    assert_eq!(
        result_json(&drop, None),
        json!({"role": "app", "dropped": true})
    );
    let grant = parse(&["grant", "app", "carts", "write", "--json"]);
    assert_eq!(
        result_json(&grant, None),
        json!({"role": "app", "keyspace": "carts", "perm": "write", "granted": true})
    );
    let revoke = parse(&["revoke", "app", "*", "read", "--json"]);
    assert_eq!(
        result_json(&revoke, None),
        json!({"role": "app", "keyspace": "*", "perm": "read", "revoked": true})
    );
    assert!(parse(&["list", "--json"]).admin().json);
    assert!(!parse(&["list"]).admin().json);
}

/// Issue 13: `geokv auth list` printed the JSON only; it is a table
/// now (one line per role and keyspace), `--json` the JSON as before.
#[test]
fn auth_list_prints_a_table_of_roles_and_grants() {
    let v = json!({"version": 4, "roles": {
        "admin": {"grants": {"*": ["admin"]}, "token": true},
        "app": {"grants": {"carts": ["read", "write"], "users": ["read"]}, "token": true},
        "svc": {"grants": {}, "token": false},
    }});
    let body = serde_json::to_string_pretty(&v).unwrap();
    let json = list_output(&body, true).expect("json");
    assert_eq!(json.lines().count(), 1, "one line: {json:?}");
    let back: Value = serde_json::from_str(&json).expect("--json is JSON");
    assert_eq!(back, v, "--json keeps the server's JSON");
    let text = list_output(&body, false).expect("table");
    let lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    let words: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(words[0], ["ROLE", "TOKEN", "KEYSPACE", "PERMISSIONS"]);
    assert_eq!(words[1], ["admin", "yes", "*", "admin"]);
    assert_eq!(words[2], ["app", "yes", "carts", "read,write"]);
    assert_eq!(words[3], ["app", "yes", "users", "read"]);
    assert_eq!(words[4], ["svc", "no", "(certificate)", "-", "-"]);
    // The columns line up: every KEYSPACE cell starts where its header does.
    let at = lines[0].find("KEYSPACE").expect("header");
    for (line, ks) in lines[1..5].iter().zip(["*", "carts", "users", "-"]) {
        assert_eq!(line[at..].split_whitespace().next(), Some(ks), "{line:?}");
    }
    assert_eq!(lines[5], "last change at 1970-01-01T00:00:00.004Z");
}

/// review-auth29 L2: the auth `version` is a wall time in ms now
/// (`geokv::clock::rfc3339`'s own cases are its module's).
#[test]
fn the_last_change_prints_as_a_date() {
    let v = json!({"version": 1_764_550_923_456u64, "roles": {}});
    assert!(roles_table(&v).ends_with("last change at 2025-12-01T01:02:03.456Z\n"));
    let v = json!({"version": 0, "roles": {}});
    assert!(roles_table(&v).ends_with("last change at -\n"));
}

/// review-fix33 L3: a failed create-role keeps its generated token unless
/// the node refused it (4xx), and says "was" only for a 503 made here.
#[test]
fn a_failed_create_role_keeps_its_token_unless_refused() {
    let status = |code: u16, body: &str| {
        anyhow::Error::from(StatusError {
            endpoint: "n1:9090".into(),
            code,
            body: body.into(),
        })
    };
    let short = format!("{MADE_HERE} (version 7, saved and synced here), in force on 1 of 3");
    assert_eq!(kept(&status(503, &short)), Some("was"));
    assert_eq!(kept(&status(503, "not ready")), Some("may have been"));
    assert_eq!(kept(&status(500, "save failed")), Some("may have been"));
    for refused in [400, 401, 403, 409] {
        assert_eq!(kept(&status(refused, "no")), None, "{refused}");
    }
    let timeout = anyhow::anyhow!("n1:9090 did not answer POST /auth/roles within 10 s");
    assert_eq!(kept(&timeout), Some("may have been"));
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    let connect = anyhow::Error::from(refused).context("connecting to n1:9090");
    assert_eq!(kept(&connect), Some("may have been"));
    let no_token = anyhow::anyhow!("n1:9090 answered 401: unauthorized (give the admin token)");
    assert_eq!(kept(&no_token), None);
    // review-clock35 M1, M2: nothing stamped; made, then undone.
    let wait = status(503, "clock not yet measured: 2 of 5 members heard");
    assert_eq!(kept(&wait), None);
    assert!(not_measured(&wait) && !not_measured(&status(503, &short)));
    let superseded = status(409, "superseded: a later change, stamped 3000 ms");
    assert_eq!(kept(&superseded), None);
    assert!(is_superseded(&superseded));
    assert!(!is_superseded(&status(409, "clock_skew: far")));
}

/// A fake admin's answers, one per call, the last repeated; when each
/// call was made (paused time, from the start).
async fn calls(answers: &[(u16, &str)]) -> (anyhow::Result<String>, Vec<u64>) {
    let start = tokio::time::Instant::now();
    let mut at = Vec::new();
    let made = until_measured(|| {
        at.push(start.elapsed().as_millis() as u64);
        let (code, body) = answers[(at.len() - 1).min(answers.len() - 1)];
        async move {
            match code {
                200 => Ok(body.to_string()),
                _ => Err(anyhow::Error::from(StatusError {
                    endpoint: "n1:7072".into(),
                    code,
                    body: body.into(),
                })),
            }
        }
    })
    .await;
    (made, at)
}

/// review-clock35b L4: a 503 `clock not yet measured` is asked again a
/// second apart, and the first other answer is the command's; past 10 s
/// the 503 is (nothing was stamped). Paused time, no sleeps. Fails before,
/// by reading: the loop was inline in `call` and no test reached it.
#[tokio::test(start_paused = true)]
async fn a_change_not_yet_measured_is_asked_again_a_second_apart() {
    let wait = (
        503,
        "clock not yet measured: 2 of 5 members heard since this node started",
    );
    let ok = (200, "{\"version\":7}");
    let (made, at) = calls(&[wait, wait, wait, ok]).await;
    assert_eq!(made.expect("the 200"), "{\"version\":7}");
    assert_eq!(at, [0, 1_000, 2_000, 3_000]);

    let (made, at) = calls(&[wait]).await;
    let e = made.expect_err("still not measured");
    assert!(not_measured(&e), "{e}");
    assert!(e.to_string().contains(wait.1), "{e}");
    assert_eq!(at.len(), 11, "{at:?}");
    assert_eq!(at.last(), Some(&10_000));

    // Any other answer is the command's at once: a 503 short of a quorum
    // (made here) is not made again, nor is a 409.
    let short = (503, "made on this node (version 7, saved and synced here)");
    let (made, at) = calls(&[wait, short, ok]).await;
    assert!(made.expect_err("short").to_string().contains(MADE_HERE));
    assert_eq!(at, [0, 1_000]);
    let (made, at) = calls(&[(409, "clock_skew: far"), ok]).await;
    assert!(made.is_err());
    assert_eq!(at, [0]);
}
