//! Waiting until a node answers `/health`: the one poll loop of
//! [`super::LocalCluster`], `geokv dev` and the integration harness.
//! Must not: start, signal or reap a process, nor decide what a node that
//! exited means (the caller's `gone` check says, with its own error).
use std::time::Duration;

use tokio::time::Instant;

use super::{admin_request_as, AdminAccess, ClusterError};
use crate::topology::NodeInfo;

/// Between two polls of one node.
const POLL: Duration = Duration::from_millis(50);

/// How long a wait may take: `limit` from `since` (one bound shared by
/// every node of a start).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub since: Instant,
    pub limit: Duration,
}

impl Bound {
    /// `limit` from now.
    pub fn from_now(limit: Duration) -> Self {
        Bound {
            since: Instant::now(),
            limit,
        }
    }
}

/// Polls `node`'s `/health` (through `access`) until it answers. After each
/// poll that fails, `gone` may end the wait with its own error (the node's
/// process exited); past `bound` it ends with [`ClusterError::NotReady`].
pub async fn wait_healthy<E: From<ClusterError>>(
    access: &AdminAccess,
    node: &NodeInfo,
    bound: Bound,
    mut gone: impl FnMut() -> Result<(), E>,
) -> Result<(), E> {
    let addr = node.admin_address;
    while admin_request_as(access, addr, "GET", "/health")
        .await
        .is_err()
    {
        gone()?;
        if bound.since.elapsed() > bound.limit {
            return Err(E::from(ClusterError::NotReady {
                node: node.id.clone(),
                addr,
                limit: bound.limit,
            }));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn node_at(admin_address: SocketAddr) -> NodeInfo {
        crate::transport::testing::node("n1", admin_address)
    }

    /// An address nothing listens on (a port bound, then released).
    fn closed_port() -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    }

    #[tokio::test]
    async fn a_node_that_answers_ends_the_wait() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
            s.write_all(ok.as_bytes()).await.unwrap();
        });
        let (access, node) = (AdminAccess::default(), node_at(addr));
        let bound = Bound::from_now(Duration::from_secs(30));
        let res = wait_healthy(&access, &node, bound, || Ok::<(), ClusterError>(()));
        res.await.expect("answered");
    }

    #[tokio::test]
    async fn a_node_gone_ends_the_wait_with_the_callers_error() {
        let (access, node) = (AdminAccess::default(), node_at(closed_port()));
        let bound = Bound::from_now(Duration::from_secs(30));
        let res = wait_healthy(&access, &node, bound, || {
            Err(ClusterError::Io(std::io::Error::other("exited")))
        });
        let err = res.await.expect_err("the node is gone");
        assert!(matches!(err, ClusterError::Io(_)), "{err}");
    }

    #[tokio::test]
    async fn a_node_silent_past_the_bound_is_not_ready() {
        let (access, node) = (AdminAccess::default(), node_at(closed_port()));
        let bound = Bound::from_now(Duration::ZERO);
        let res = wait_healthy(&access, &node, bound, || Ok::<(), ClusterError>(()));
        let err = res.await.expect_err("never answered");
        assert!(
            matches!(&err, ClusterError::NotReady { node, .. } if node == "n1"),
            "{err}"
        );
    }
}
