//! `geokv dev status|stop|start|kill|cut|heal`: act on a running dev
//! cluster from any shell, through its record in the data directory (see
//! [`super::record`]) and the nodes' admin ports (`/health`, `/faults`).
//!
//! Each prints its text lines as it goes, or, asked for JSON, nothing, and
//! returns what it did ([`super::report`]) for the caller to print once.
//! Must not match processes by name, and must not send data requests.
use anyhow::Context;
use serde_json::json;
use std::time::Duration;

use geokv::local_cluster::admin_request_as;
use geokv::topology::{NodeInfo, Topology};

use super::record::DevDir;
use super::report::{Links, NodeStop, Signalled, Stop, StopOutcome};

/// How long a node gets to stop after SIGTERM before it is SIGKILLed.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn node(topology: &Topology, id: &str) -> anyhow::Result<NodeInfo> {
    topology.node_by_id(id).with_context(|| {
        let ids: Vec<String> = topology.nodes().into_iter().map(|n| n.id).collect();
        format!(
            "no node {id} in this dev cluster (nodes: {})",
            ids.join(", ")
        )
    })
}

/// Prints `line` unless the command was asked for JSON.
fn say(quiet: bool, line: &str) {
    if !quiet {
        println!("{line}");
    }
}

/// `geokv dev stop [NODE]`: one node (SIGTERM, SIGKILL after 10 s), or the
/// whole cluster: the supervisor, then any node still running.
pub fn stop(dev: &DevDir, id: Option<&str>, quiet: bool) -> anyhow::Result<Stop> {
    let topology = dev.topology()?;
    let explicit = id.is_some();
    let mut supervisor_pid = None;
    let mut nodes = Vec::new();
    let ids: Vec<String> = match id {
        Some(id) => vec![node(&topology, id)?.id],
        None => {
            let all: Vec<String> = topology.nodes().into_iter().map(|n| n.id).collect();
            let sup = dev.supervisor();
            let before: Vec<(String, Option<u32>)> = (all.iter())
                .map(|id| (id.clone(), dev.node(id).running()))
                .collect();
            if let Some(pid) = sup.signal(libc::SIGTERM) {
                if !sup.wait_gone(STOP_GRACE * 2) {
                    anyhow::bail!("the dev supervisor (pid {pid}) did not stop");
                }
                say(quiet, &format!("stopped the dev supervisor (pid {pid})"));
                supervisor_pid = Some(pid);
                // The supervisor stops its nodes on its way out: name them.
                for (id, pid) in before {
                    if pid.is_some() && dev.node(&id).running().is_none() {
                        let done = NodeStop {
                            node: id,
                            pid,
                            outcome: StopOutcome::Stopped,
                        };
                        say(quiet, &done.line(STOP_GRACE));
                        nodes.push(done);
                    }
                }
            }
            let named: Vec<String> = nodes.iter().map(|n| n.node.clone()).collect();
            all.into_iter().filter(|id| !named.contains(id)).collect()
        }
    };
    for id in ids {
        let rec = dev.node(&id);
        let (pid, outcome) = match rec.signal(libc::SIGTERM) {
            None => (None, StopOutcome::NotRunning),
            Some(pid) if rec.wait_gone(STOP_GRACE) => (Some(pid), StopOutcome::Stopped),
            Some(pid) => {
                rec.signal(libc::SIGKILL);
                rec.wait_gone(Duration::from_secs(5));
                (Some(pid), StopOutcome::Killed)
            }
        };
        let done = NodeStop {
            node: id,
            pid,
            outcome,
        };
        // A whole-cluster stop does not list the nodes that were down.
        if explicit || outcome != StopOutcome::NotRunning {
            say(quiet, &done.line(STOP_GRACE));
        }
        nodes.push(done);
    }
    Ok(Stop {
        supervisor_pid,
        nodes,
    })
}

/// `geokv dev kill NODE`: SIGKILL, as a crash would.
pub fn kill(dev: &DevDir, id: &str, quiet: bool) -> anyhow::Result<Signalled> {
    let id = node(&dev.topology()?, id)?.id;
    let rec = dev.node(&id);
    let pid = rec
        .signal(libc::SIGKILL)
        .with_context(|| format!("{id} is not running"))?;
    rec.wait_gone(Duration::from_secs(5));
    let done = Signalled {
        node: id,
        pid,
        action: "killed",
    };
    say(quiet, &done.line());
    Ok(done)
}

/// `geokv dev start NODE`: restarts a node from its recorded command line
/// and waits until it answers.
pub fn start(dev: &DevDir, id: &str, quiet: bool) -> anyhow::Result<Signalled> {
    let n = node(&dev.topology()?, id)?;
    let rec = dev.node(&n.id);
    if let Some(pid) = rec.running() {
        anyhow::bail!("{} is already running (pid {pid})", n.id);
    }
    // Not waited for: the node outlives this command (it is in its own
    // process group and is reparented when we exit).
    let child = rec.start()?;
    runtime()?.block_on(super::up::wait_ready(
        dev,
        std::slice::from_ref(&n),
        Duration::from_secs(60),
    ))?;
    let done = Signalled {
        node: n.id,
        pid: child.id(),
        action: "started",
    };
    say(quiet, &done.line());
    Ok(done)
}

/// `geokv dev status`: every node's process and health, and the supervisor.
pub fn status(dev: &DevDir, as_json: bool) -> anyhow::Result<()> {
    let topology = dev.topology()?;
    let rt = runtime()?;
    let access = dev.admin_access();
    let mut rows = Vec::new();
    for n in topology.nodes() {
        let pid = dev.node(&n.id).running();
        let state = match pid {
            None => "down",
            Some(_) => {
                match rt.block_on(admin_request_as(&access, n.admin_address, "GET", "/health")) {
                    Ok(_) => "up",
                    Err(_) => "starting",
                }
            }
        };
        rows.push((n, state, pid));
    }
    let supervisor = dev.supervisor().running();
    if as_json {
        let nodes: Vec<_> = rows
            .iter()
            .map(|(n, state, pid)| {
                json!({"node": n.id, "dc": n.dc, "rack": n.rack, "state": state, "pid": pid,
                       "grpc": n.client_address.to_string(), "admin": n.admin_address.to_string()})
            })
            .collect();
        let out = json!({"data_dir": dev.root.display().to_string(),
                         "supervisor_pid": supervisor, "nodes": nodes});
        println!("{out}");
        return Ok(());
    }
    let mut table =
        super::super::render::table(["NODE", "DC", "RACK", "STATE", "PID", "GRPC", "ADMIN"]);
    for (n, state, pid) in &rows {
        let pid = pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into());
        table.add_row([
            n.id.clone(),
            n.dc.clone(),
            n.rack.clone(),
            state.to_string(),
            pid,
            n.client_address.to_string(),
            n.admin_address.to_string(),
        ]);
    }
    println!("{table}");
    match supervisor {
        Some(pid) => println!("supervisor: running (pid {pid})"),
        None => println!("supervisor: not running"),
    }
    Ok(())
}

/// `geokv dev cut A B` / `geokv dev heal A B`: cut (heal) every link
/// between A and B (each a datacenter or a node id), on both sides.
pub fn link(dev: &DevDir, a: &str, b: &str, cut: bool, quiet: bool) -> anyhow::Result<Links> {
    let topology = dev.topology()?;
    for side in [a, b] {
        if !topology
            .nodes()
            .iter()
            .any(|n| n.id == side || n.dc == side)
        {
            anyhow::bail!("{side} is neither a datacenter nor a node of this dev cluster");
        }
    }
    let verb = if cut { "cut" } else { "heal" };
    let mut calls = Vec::new();
    for n in topology.nodes() {
        if n.id == a || n.dc == a {
            calls.push((n.clone(), b));
        }
        if n.id == b || n.dc == b {
            calls.push((n, a));
        }
    }
    let between = Some([a.to_string(), b.to_string()]);
    let done = send_faults(dev, verb, between, calls)?;
    if done.failed.is_empty() {
        say(quiet, &done.line());
    }
    Ok(done)
}

/// `geokv dev heal` without arguments: heal every cut on every node.
pub fn heal_all(dev: &DevDir, quiet: bool) -> anyhow::Result<Links> {
    let calls = dev
        .topology()?
        .nodes()
        .into_iter()
        .map(|n| (n, "*"))
        .collect();
    let done = send_faults(dev, "heal", None, calls)?;
    if done.failed.is_empty() {
        say(quiet, &done.line());
    }
    Ok(done)
}

/// POSTs `/faults/<verb>?target=…` to each running node of `calls`
/// ([`super::faults::apply`]).
fn send_faults(
    dev: &DevDir,
    verb: &'static str,
    between: Option<[String; 2]>,
    calls: Vec<(NodeInfo, &str)>,
) -> anyhow::Result<Links> {
    let rt = runtime()?;
    let access = dev.admin_access();
    let running = |id: &str| dev.node(id).running().is_some();
    let done = super::faults::apply(verb, between, calls, running, |n, path| {
        rt.block_on(admin_request_as(&access, n.admin_address, "POST", path))?;
        Ok(())
    });
    Ok(done)
}
