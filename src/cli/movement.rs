//! `geokv removenode ID --endpoint ADMIN` (begin the removal of a dead node
//! and wait for it with a progress bar) and the movement lines of
//! `geokv ring`: each node's `GET /movement` report (ranges done/total,
//! keys and bytes streamed, rate, ETA). Owns the printing only (with
//! `--json`, one object once done and no progress bar); the removal itself
//! runs in the nodes (`geokv::movement::remove`).
//!
//! Must not: drive a removal itself (it runs in the nodes).
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context;
use geokv::layout::{Layout, NodeState};
use geokv::movement::progress::{Held, Report, Warnings};

use super::ring::http;

/// Arguments of `geokv removenode`.
#[derive(clap::Args, Debug)]
pub struct RemoveArgs {
    /// The dead node to remove.
    pub id: String,
    /// Any live node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Return once the removal has begun instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
    /// Copy each range from the survivors that are up even when too few
    /// are to hold every quorum write; prints the ranges that may have
    /// lost writes. Also forces a removal already in progress.
    #[arg(long)]
    pub force: bool,
    /// Withdraw the removal of ID before its switch (every node it
    /// removes is Normal again): the way out when a second dead node in
    /// the datacenter holds it up; then replace that node, then remove ID.
    #[arg(long, conflicts_with_all = ["force", "no_wait"])]
    pub withdraw: bool,
    /// No progress bar; one JSON object once done: id, removal, version,
    /// removed, removed_in_version, warnings.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// Every member's report of the movement it streams for, and the steps
/// each holds back (`held`: a removal's switch waiting on the upgrade
/// gate); nodes that do not answer are left out.
pub async fn reports(layout: &Layout) -> (Vec<(String, Report)>, Vec<Held>) {
    let mut out = Vec::new();
    let mut held = Vec::new();
    for (_, _, n) in layout.nodes().filter(|(_, _, n)| n.state.is_member()) {
        let addr = n.admin_address.to_string();
        let ask = http(&addr, "GET", "/movement");
        let Ok(Ok(body)) = tokio::time::timeout(Duration::from_secs(2), ask).await else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Ok(r) = serde_json::from_value::<Report>(v["streaming"].clone()) {
            out.push((n.id.clone(), r));
        }
        held.extend(held_of(&n.id, &v));
    }
    (out, held)
}

/// The steps node `id` holds back, from its `GET /movement` answer `v`.
fn held_of(id: &str, v: &serde_json::Value) -> Vec<Held> {
    let Some(by_movement) = v["held"].as_object() else {
        return Vec::new();
    };
    (by_movement.iter())
        .map(|(movement, why)| Held {
            node: id.to_string(),
            movement: movement.clone(),
            why: why.as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

/// One line per report, for `geokv ring`.
pub fn lines(reports: &[(String, Report)]) -> String {
    let mut out = String::new();
    for (id, r) in reports {
        let eta = r.eta_secs.map_or("-".into(), |s| format!("{s:.0} s"));
        let _ = writeln!(
            out,
            "  {id}: {} [{}] {}/{} ranges, {} keys, {:.1} MB, {:.0} keys/s, {:.2} MB/s, ETA {eta}",
            r.movement,
            r.status,
            r.ranges_done,
            r.ranges_total,
            r.keys,
            r.bytes as f64 / 1e6,
            r.keys_per_sec,
            r.bytes_per_sec / 1e6,
        );
        for w in &r.warnings {
            let _ = writeln!(out, "    warning: {w}");
        }
    }
    out
}

async fn layout(endpoint: &str) -> anyhow::Result<Layout> {
    let body = http(endpoint, "GET", "/layout").await?;
    serde_json::from_str(&body).context("decoding the layout")
}

/// Prints what the gainers warned of (a forced removal's short ranges).
fn print_warnings(warnings: &Warnings) {
    for (id, list) in warnings {
        for w in list {
            println!("warning: {id} copied from fewer survivors than a quorum needs, writes may be lost: {w}");
        }
    }
}

/// `geokv removenode --json`: the node, what the first answer said
/// (`removal`, its layout `version`), `removed` (false with `--no-wait`),
/// the layout version that shows it Removed, and the gainers' warnings
/// (gainer id → short ranges; a forced removal's possible losses).
fn removal_json(
    id: &str,
    begun: &serde_json::Value,
    removed_in: Option<u64>,
    warnings: &Warnings,
) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "removal": begun["removal"],
        "version": begun["version"],
        "removed": removed_in.is_some(),
        "removed_in_version": removed_in,
        "warnings": warnings,
    })
}

/// The path of `geokv removenode`'s request.
fn remove_path(args: &RemoveArgs) -> String {
    let flag = match (args.force, args.withdraw) {
        (_, true) => "&withdraw=true",
        (true, _) => "&force=true",
        _ => "",
    };
    format!("/removenode?id={}{flag}", args.id)
}

/// Prints the answer to `geokv removenode --withdraw` (`v`).
fn print_withdrawn(args: &RemoveArgs, v: &serde_json::Value) {
    match args.json {
        true => println!("{v}"),
        false => println!(
            "removal of {} withdrawn (layout v{})",
            args.id, v["version"]
        ),
    }
}

/// Why the wait for the removal of `id` ends without it
/// (review-withdraw34 M1): on a layout from the request's version `since`
/// on, `id` is Normal with no removal of it running, so it was withdrawn
/// (a removal keeps its node Leaving until `finish_remove`).
fn withdrawn(l: &Layout, id: &str, since: u64) -> Option<String> {
    let normal = l.node(id).map(|(_, _, n)| n.state) == Some(NodeState::Normal);
    let removing = geokv::movement::remove::is_removing(l, id);
    (l.version >= since && normal && !removing).then(|| {
        format!("the removal of {id} is no longer in progress (withdrawn); {id} is Normal")
    })
}

/// Prints the answer to forcing a replacement (`removenode DEAD --force`
/// on the dead node of a replacement): nothing to wait for here.
fn print_forced_replacement(args: &RemoveArgs, v: &serde_json::Value) {
    match args.json {
        true => println!("{v}"),
        false => println!(
            "the replacement of {} is forced (layout v{}): it copies from the survivors that are up; writes only the dead nodes acknowledged are lost, and its warnings (`geokv ring`) name the ranges copied from too few",
            args.id, v["version"]
        ),
    }
}

/// The removal's progress bar (hidden with `--json`).
fn progress_bar(json: bool) -> indicatif::ProgressBar {
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} ranges {msg}",
        )
        .expect("a valid template"),
    );
    bar
}

/// Runs `geokv removenode`.
pub async fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let body = http(&args.endpoint, "POST", &remove_path(&args)).await?;
    let v: serde_json::Value = serde_json::from_str(&body).context("decoding the answer")?;
    if args.withdraw {
        print_withdrawn(&args, &v);
        return Ok(());
    }
    if v["removal"] == "forced_replacement" {
        print_forced_replacement(&args, &v);
        return Ok(());
    }
    let mut warnings = Warnings::new();
    if args.json && args.no_wait {
        println!("{}", removal_json(&args.id, &v, None, &warnings));
        return Ok(());
    }
    if !args.json {
        println!(
            "removal of {}: {} (layout v{})",
            args.id,
            v["removal"].as_str().unwrap_or("?"),
            v["version"]
        );
    }
    if args.no_wait {
        return Ok(());
    }
    let bar = progress_bar(args.json);
    // Reports about layouts before this request (the failed unforced
    // attempt a `--force` follows) are stale.
    let since = v["version"].as_u64().unwrap_or(0);
    loop {
        let l = layout(&args.endpoint).await?;
        // Named by every node it removes (a dead gainer may be removed with it).
        let name = geokv::movement::remove::movement_name(&l, &args.id);
        let (all, held) = reports(&l).await;
        let (failed, seen) = geokv::movement::progress::verdict(&all, &name, since);
        warnings.extend(seen);
        if l.node(&args.id).map(|(_, _, n)| n.state) == Some(NodeState::Removed) {
            bar.finish_with_message("done");
            if args.json {
                println!("{}", removal_json(&args.id, &v, Some(l.version), &warnings));
            } else {
                println!("{} is removed (layout v{})", args.id, l.version);
                print_warnings(&warnings);
            }
            return Ok(());
        }
        if let Some((id, why)) = failed {
            bar.abandon();
            anyhow::bail!("removal of {} failed on {id}: {why}", args.id);
        }
        if let Some(why) = withdrawn(&l, &args.id, since) {
            bar.abandon();
            anyhow::bail!(why);
        }
        let mine: Vec<(String, Report)> = all
            .into_iter()
            .filter(|(_, r)| r.movement == name)
            .collect();
        let mine: Vec<Report> = mine.into_iter().map(|(_, r)| r).collect();
        let (done, total) = mine
            .iter()
            .fold((0, 0), |(d, t), r| (d + r.ranges_done, t + r.ranges_total));
        let keys: u64 = mine.iter().map(|r| r.keys).sum();
        let bytes: u64 = mine.iter().map(|r| r.bytes).sum();
        bar.set_length(total);
        bar.set_position(done);
        let why = match held.iter().find(|h| h.movement == name) {
            Some(h) => format!(", held by {}: {}", h.node, h.why),
            None => String::new(),
        };
        bar.set_message(format!(
            "{keys} keys, {:.1} MB, {} gainer(s){why}",
            bytes as f64 / 1e6,
            mine.len()
        ));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// review-elastic28 M2: a node's `GET /movement` `held` is read back.
    #[test]
    fn a_held_step_is_read_from_the_movement_answer() {
        let v = serde_json::json!({"held": {"removal of x": "not proposed: y (an older build)"}});
        let held = held_of("a", &v);
        assert_eq!(held.len(), 1);
        assert_eq!(
            (held[0].node.as_str(), held[0].movement.as_str()),
            ("a", "removal of x")
        );
        assert_eq!(held[0].why, "not proposed: y (an older build)");
        assert!(held_of("a", &serde_json::json!({"held": {}})).is_empty());
        assert!(
            held_of("a", &serde_json::json!({})).is_empty(),
            "an older node"
        );
    }

    /// review-cancel31 H1: `--withdraw` reaches the query, alone.
    #[test]
    fn withdraw_is_parsed_and_conflicts_with_force_and_no_wait() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            r: RemoveArgs,
        }
        let parse = |more: &[&str]| {
            Cli::try_parse_from([&["x", "dc1-n2", "--endpoint", "a:1"], more].concat())
        };
        let w = parse(&["--withdraw"]).unwrap().r;
        assert!(w.withdraw && !w.force);
        assert_eq!(remove_path(&w), "/removenode?id=dc1-n2&withdraw=true");
        assert!(parse(&["--withdraw", "--force"]).is_err());
        assert!(parse(&["--withdraw", "--no-wait"]).is_err());
        let f = parse(&["--force", "--no-wait"]).unwrap().r;
        assert_eq!(remove_path(&f), "/removenode?id=dc1-n2&force=true");
        assert_eq!(remove_path(&parse(&[]).unwrap().r), "/removenode?id=dc1-n2");
    }

    /// review-withdraw34 M1: the wait ends once the removal is withdrawn
    /// (A Normal, no removal), not while it runs, nor on a layout from
    /// before the request.
    #[test]
    fn the_wait_ends_once_the_removal_is_withdrawn() {
        // dc1 of two nodes at rf 1 (the dev layout, 3 at rf 3, removes none).
        use geokv::topology::{generate, Topology};
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let nodes = vec![
            generate::node("dc1-n1", ip, [1, 2, 3]),
            generate::node("dc1-n2", ip, [4, 5, 6]),
        ];
        let dcs = vec![("dc1".to_string(), nodes)];
        let topo = generate::one_rack_per_node("t", 16, dcs, &[("ks", &[("dc1", 1)])]);
        let seed = Layout::seed(&Topology::parse("t.yaml", &topo.to_yaml()).unwrap());
        let running = seed.begin_remove("dc1-n2").unwrap();
        let since = running.version;
        assert_eq!(withdrawn(&running, "dc1-n2", since), None);
        assert_eq!(
            withdrawn(&seed, "dc1-n2", since),
            None,
            "a layout from before"
        );
        let back = running.withdraw_remove("dc1").unwrap();
        let why = withdrawn(&back, "dc1-n2", since).unwrap();
        assert!(
            why.contains("withdrawn") && why.contains("dc1-n2 is Normal"),
            "{why}"
        );
        let done = running.finish_remove("dc1-n2").unwrap();
        assert_eq!(withdrawn(&done, "dc1-n2", since), None, "Removed");
    }

    #[test]
    fn removal_json_says_whether_it_is_done_and_lists_the_warnings() {
        let begun = serde_json::json!({"removal": "begun", "version": 7});
        let mut warnings = Warnings::new();
        warnings.insert("dc1-n2".into(), vec!["(10, 20]".into()]);
        let v = removal_json("dc1-n3", &begun, Some(9), &warnings);
        assert_eq!(v["id"], "dc1-n3");
        assert_eq!(v["removal"], "begun");
        assert_eq!(v["version"], 7);
        assert_eq!(v["removed"], true);
        assert_eq!(v["removed_in_version"], 9);
        assert_eq!(v["warnings"]["dc1-n2"][0], "(10, 20]");
        let waiting = removal_json("dc1-n3", &begun, None, &Warnings::new());
        assert_eq!(waiting["removed"], false);
        assert!(waiting["removed_in_version"].is_null());
        assert_eq!(waiting["warnings"], serde_json::json!({}));
    }
}
