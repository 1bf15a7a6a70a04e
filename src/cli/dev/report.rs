//! What `geokv dev stop|start|kill|cut|heal` did, as the text lines they
//! print and as the one JSON object they print with `--json` (the same
//! facts, so a script needs no text parsing).
//!
//! Pure values and string building, tested here; must not signal, start or
//! call anything (that is [`super::control`]).
use serde::Serialize;

/// How one node's stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopOutcome {
    /// It exited after SIGTERM.
    Stopped,
    /// It did not exit within the grace period and was SIGKILLed.
    Killed,
    /// No recorded process of it was running.
    NotRunning,
}

/// One node of `geokv dev stop`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStop {
    pub node: String,
    pub pid: Option<u32>,
    pub outcome: StopOutcome,
}

impl NodeStop {
    /// Its text line (`grace` is the SIGTERM grace period, for `Killed`).
    pub fn line(&self, grace: std::time::Duration) -> String {
        let (node, pid) = (&self.node, self.pid.unwrap_or_default());
        match self.outcome {
            StopOutcome::Stopped => format!("stopped {node} (pid {pid})"),
            StopOutcome::Killed => {
                format!("{node} (pid {pid}) did not stop within {grace:?}; killed it")
            }
            StopOutcome::NotRunning => format!("{node} is not running"),
        }
    }
}

/// `geokv dev stop [NODE] --json`: the supervisor's pid when this command
/// stopped it (whole-cluster stop), and every node it looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stop {
    pub supervisor_pid: Option<u32>,
    pub nodes: Vec<NodeStop>,
}

/// `geokv dev start|kill NODE --json`: what was done to which process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signalled {
    pub node: String,
    pub pid: u32,
    /// `started` or `killed`.
    pub action: &'static str,
}

impl Signalled {
    pub fn line(&self) -> String {
        format!("{} {} (pid {})", self.action, self.node, self.pid)
    }
}

/// `geokv dev cut|heal --json`: the link change and the nodes it was sent to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Links {
    /// `cut` or `heal`.
    pub action: &'static str,
    /// The two sides (datacenters or node ids); null for "heal every cut".
    pub between: Option<[String; 2]>,
    /// The running nodes whose links were changed.
    pub nodes: Vec<String>,
    /// The nodes that were down, so their links are unchanged.
    pub down: Vec<String>,
    /// The running nodes whose change failed, with why.
    pub failed: Vec<Failed>,
}

/// A node a link change failed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failed {
    pub node: String,
    pub error: String,
}

impl Links {
    pub fn line(&self) -> String {
        match &self.between {
            Some([a, b]) => format!("{}: {a} <-> {b}", self.action),
            None => "healed every link".to_string(),
        }
    }

    /// The command's error when the change failed on some node: each such
    /// node with why, and the nodes it holds on (for a cut: which are cut).
    pub fn failure(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let what = match &self.between {
            Some([a, b]) => format!("{} {a} <-> {b}", self.action),
            None => "heal of every cut".to_string(),
        };
        let failed: Vec<String> = (self.failed.iter())
            .map(|f| format!("{} ({})", f.node, f.error))
            .collect();
        let state = if self.action == "cut" {
            "cut"
        } else {
            "healed"
        };
        let held = match self.nodes.is_empty() {
            true => "no node".to_string(),
            false => self.nodes.join(", "),
        };
        let mut out = format!(
            "{what} failed on {}; {state} on {held} only",
            failed.join(", ")
        );
        if !self.down.is_empty() {
            out += &format!(" ({} down, unchanged)", self.down.join(", "));
        }
        Some(out)
    }
}

/// Prints `report` as one line of JSON.
pub fn print_json(report: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(report)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn a_stop_names_each_node_with_its_pid_and_how_it_ended() {
        let stop = Stop {
            supervisor_pid: Some(7),
            nodes: vec![
                NodeStop {
                    node: "dc1-n1".into(),
                    pid: Some(11),
                    outcome: StopOutcome::Stopped,
                },
                NodeStop {
                    node: "dc1-n2".into(),
                    pid: Some(12),
                    outcome: StopOutcome::Killed,
                },
                NodeStop {
                    node: "dc2-n1".into(),
                    pid: None,
                    outcome: StopOutcome::NotRunning,
                },
            ],
        };
        assert_eq!(
            serde_json::to_value(&stop).unwrap(),
            json!({"supervisor_pid": 7, "nodes": [
                {"node": "dc1-n1", "pid": 11, "outcome": "stopped"},
                {"node": "dc1-n2", "pid": 12, "outcome": "killed"},
                {"node": "dc2-n1", "pid": null, "outcome": "not_running"},
            ]})
        );
        let grace = Duration::from_secs(10);
        let lines: Vec<String> = stop.nodes.iter().map(|n| n.line(grace)).collect();
        assert_eq!(
            lines,
            [
                "stopped dc1-n1 (pid 11)",
                "dc1-n2 (pid 12) did not stop within 10s; killed it",
                "dc2-n1 is not running",
            ]
        );
    }

    #[test]
    fn a_start_or_kill_names_the_node_the_pid_and_the_action() {
        let killed = Signalled {
            node: "dc1-n2".into(),
            pid: 42,
            action: "killed",
        };
        assert_eq!(
            serde_json::to_value(&killed).unwrap(),
            json!({"node": "dc1-n2", "pid": 42, "action": "killed"})
        );
        assert_eq!(killed.line(), "killed dc1-n2 (pid 42)");
    }

    #[test]
    fn a_link_change_names_its_sides_and_the_nodes_it_reached() {
        let cut = Links {
            action: "cut",
            between: Some(["dc1".into(), "dc2".into()]),
            nodes: vec!["dc1-n1".into(), "dc2-n1".into()],
            down: vec!["dc1-n2".into()],
            failed: vec![],
        };
        assert_eq!(
            serde_json::to_value(&cut).unwrap(),
            json!({"action": "cut", "between": ["dc1", "dc2"],
                   "nodes": ["dc1-n1", "dc2-n1"], "down": ["dc1-n2"], "failed": []})
        );
        assert_eq!(cut.line(), "cut: dc1 <-> dc2");
        let all = Links {
            action: "heal",
            between: None,
            nodes: vec!["dc1-n1".into()],
            down: vec![],
            failed: vec![],
        };
        assert_eq!(serde_json::to_value(&all).unwrap()["between"], json!(null));
        assert_eq!(all.line(), "healed every link");
        assert_eq!(all.failure(), None);
    }

    #[test]
    fn a_link_change_that_failed_on_a_node_names_it_and_where_it_holds() {
        let cut = Links {
            action: "cut",
            between: Some(["dc1".into(), "dc2".into()]),
            nodes: vec!["dc1-n1".into(), "dc2-n1".into()],
            down: vec!["dc1-n3".into()],
            failed: vec![Failed {
                node: "dc1-n2".into(),
                error: "no answer within 7s".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(&cut).unwrap()["failed"],
            json!([{"node": "dc1-n2", "error": "no answer within 7s"}])
        );
        assert_eq!(
            cut.failure().unwrap(),
            "cut dc1 <-> dc2 failed on dc1-n2 (no answer within 7s); \
             cut on dc1-n1, dc2-n1 only (dc1-n3 down, unchanged)"
        );
        let heal = Links {
            action: "heal",
            between: None,
            nodes: vec![],
            down: vec![],
            failed: cut.failed.clone(),
        };
        assert_eq!(
            heal.failure().unwrap(),
            "heal of every cut failed on dc1-n2 (no answer within 7s); healed on no node only"
        );
    }
}
