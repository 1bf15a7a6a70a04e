//! The running dev cluster's supervision: reaping the node processes
//! `geokv dev` started, reporting nodes that exit or come back, and
//! stopping them all (SIGTERM, SIGKILL after 10 s). Must not match
//! processes by name: only the records in the data directory.

use std::collections::BTreeMap;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use geokv::topology::NodeInfo;

use super::record::DevDir;

/// Reports nodes that exit or come back, until Ctrl-C or SIGTERM.
pub(super) async fn watch(sup: &mut Supervisor) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let signal = super::super::node::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            _ = tick.tick() => {
                for line in sup.watch() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// The supervisor's state: the nodes it started (to reap them) and which
/// nodes it last saw running.
pub(super) struct Supervisor {
    dev: DevDir,
    nodes: Vec<NodeInfo>,
    pub(super) children: BTreeMap<String, Child>,
    pub(super) up: BTreeMap<String, bool>,
}

impl Supervisor {
    /// Supervises `nodes` of `dev`; none started yet.
    pub(super) fn new(dev: DevDir, nodes: Vec<NodeInfo>) -> Self {
        Supervisor {
            dev,
            nodes,
            children: BTreeMap::new(),
            up: BTreeMap::new(),
        }
    }

    /// Reaps exited children and returns one line per node that went down
    /// or came back since the last call.
    fn watch(&mut self) -> Vec<String> {
        let mut exited: BTreeMap<String, ExitStatus> = BTreeMap::new();
        self.children.retain(|id, c| match c.try_wait() {
            Ok(Some(status)) => {
                exited.insert(id.clone(), status);
                false
            }
            _ => true,
        });
        let now: BTreeMap<String, Option<u32>> = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), self.dev.node(&n.id).running()))
            .collect();
        let lines = changes(&self.up, &now, &exited);
        self.up = now.into_iter().map(|(id, p)| (id, p.is_some())).collect();
        lines
    }

    pub(super) fn running_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| self.dev.node(&n.id).running().is_some())
            .count()
    }

    /// SIGTERM to every running node, SIGKILL to those still running
    /// after 10 s; returns the ids of the killed ones.
    pub(super) fn stop_all(&mut self) -> Vec<String> {
        for n in &self.nodes {
            self.dev.node(&n.id).signal(libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut killed = Vec::new();
        for n in &self.nodes {
            let rec = self.dev.node(&n.id);
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(c) = self.children.get_mut(&n.id) {
                // Our own child: reap it, or it stays a zombie.
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            } else if rec.wait_gone(left) {
                continue;
            }
            if rec.signal(libc::SIGKILL).is_some() {
                killed.push(n.id.clone());
                rec.wait_gone(Duration::from_secs(5));
            }
        }
        for c in self.children.values_mut() {
            let _ = c.wait();
        }
        self.children.clear();
        killed
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// The report lines for nodes whose running state changed (pure).
fn changes(
    before: &BTreeMap<String, bool>,
    now: &BTreeMap<String, Option<u32>>,
    exited: &BTreeMap<String, ExitStatus>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (id, pid) in now {
        let was = before.get(id).copied().unwrap_or(false);
        match (was, pid) {
            (true, None) => {
                let how = exited
                    .get(id)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "stopped".to_string());
                lines.push(format!(
                    "node {id} exited ({how}); `geokv dev start {id}` restarts it"
                ));
            }
            (false, Some(pid)) => lines.push(format!("node {id} is running again (pid {pid})")),
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn reports_nodes_going_down_and_coming_back() {
        let before: BTreeMap<String, bool> = [("a", true), ("b", true), ("c", false)]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let now: BTreeMap<String, Option<u32>> = [("a", None), ("b", Some(7)), ("c", Some(9))]
            .map(|(k, v)| (k.to_string(), v))
            .into();
        let exited: BTreeMap<String, ExitStatus> =
            [("a".to_string(), ExitStatus::from_raw(9))].into();
        assert_eq!(
            changes(&before, &now, &exited),
            [
                "node a exited (signal: 9 (SIGKILL)); `geokv dev start a` restarts it",
                "node c is running again (pid 9)",
            ]
        );
        let exited = BTreeMap::new();
        assert_eq!(
            changes(&before, &now, &exited)[0],
            "node a exited (stopped); `geokv dev start a` restarts it"
        );
    }
}
