//! `geokv dev cut|heal`'s one loop: the fault change sent to each node of
//! the change through a given admin call, and each node's result gathered
//! into [`Links`] (changed, down, or failed with why).
//! Must not: stop at a node that failed (a cut half-applied and not
//! reported is worse than one reported node by node), nor know how the
//! admin call is made (that is [`super::control`]'s).
use geokv::topology::NodeInfo;

use super::report::{Failed, Links};

/// Bytes escaped in a query value: everything but RFC 3986's unreserved
/// characters and `*` (the heal-all target).
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'*');

/// POSTs `/faults/<verb>?target=…` through `post` to each node of `calls`
/// that is `running` (the nodes down are said on stderr), whatever the
/// others answered: each node's result is in the [`Links`] returned.
pub(super) fn apply(
    verb: &'static str,
    between: Option<[String; 2]>,
    calls: Vec<(NodeInfo, &str)>,
    running: impl Fn(&str) -> bool,
    mut post: impl FnMut(&NodeInfo, &str) -> anyhow::Result<()>,
) -> Links {
    let mut done = Links {
        action: verb,
        between,
        nodes: Vec::new(),
        down: Vec::new(),
        failed: Vec::new(),
    };
    for (n, target) in calls {
        if !running(&n.id) {
            eprintln!("{} is down; its links are unchanged", n.id);
            if !done.down.contains(&n.id) {
                done.down.push(n.id);
            }
            continue;
        }
        let target = percent_encoding::utf8_percent_encode(target, QUERY_VALUE);
        let path = format!("/faults/{verb}?target={target}");
        match post(&n, &path) {
            Ok(()) if !done.nodes.contains(&n.id) => done.nodes.push(n.id),
            Ok(()) => {}
            Err(e) => done.failed.push(Failed {
                node: n.id,
                error: format!("{e:#}"),
            }),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded dev topology's node `id`.
    fn node(id: &str) -> NodeInfo {
        let topology = geokv::topology::Topology::dev();
        topology.node_by_id(id).expect("a dev node")
    }

    /// Issue 13: a node that fails must not leave the rest of a cut unsent
    /// and the cut half-applied without saying where.
    #[test]
    fn a_node_that_fails_does_not_stop_the_others_and_is_named() {
        let calls = vec![
            (node("dc1-n1"), "dc2"),
            (node("dc1-n2"), "dc2"),
            (node("dc2-n1"), "dc1"),
        ];
        let mut tried = Vec::new();
        let done = apply(
            "cut",
            None,
            calls,
            |_| true,
            |n, path| {
                tried.push((n.id.clone(), path.to_string()));
                match n.id.as_str() {
                    "dc1-n2" => anyhow::bail!("POST refused"),
                    _ => Ok(()),
                }
            },
        );
        assert_eq!(
            tried,
            [
                ("dc1-n1".to_string(), "/faults/cut?target=dc2".to_string()),
                ("dc1-n2".to_string(), "/faults/cut?target=dc2".to_string()),
                ("dc2-n1".to_string(), "/faults/cut?target=dc1".to_string()),
            ]
        );
        assert_eq!(done.nodes, ["dc1-n1", "dc2-n1"]);
        assert_eq!(
            done.failed,
            [Failed {
                node: "dc1-n2".into(),
                error: "POST refused".into()
            }]
        );
    }
}
