//! `geokv node --join SEED …`: the start of a node that is not in the
//! topology file. Opens the data directory: a layout persisted there that
//! names the node (a restart) is used as is; otherwise the node's join is
//! begun through the seed ([`geokv::movement::bootstrap::prepare_join`]).
//! Either way the node then starts from that layout, and a node still
//! Joining streams its ranges and becomes Normal by itself. With
//! `--replace DEAD` the node instead takes over the dead node's tokens
//! ([`geokv::movement::replace_bootstrap::prepare_replace`]) in its
//! datacenter and rack (`--dc`/`--rack` are not needed).
//!
//! Must not: stream data or change the layout itself (the node and `movement` do).

use anyhow::Context;
use geokv::engine::{Engine, EngineOptions, RocksEngine};
use geokv::layout::NewNode;
use geokv::movement::bootstrap::prepare_join;
use geokv::movement::replace_bootstrap::prepare_replace;
use geokv::movement::JoinRequest;
use geokv::topology::Topology;
use std::net::SocketAddr;
use std::sync::Arc;

use super::node::NodeArgs;

/// The topology (the members of the layout to start with) of a joining node.
pub fn prepare(args: &NodeArgs, seed: SocketAddr) -> anyhow::Result<Topology> {
    // The node's own TLS material: the seed checks it, and it checks the seed's.
    let tls = geokv::transport::tls::Tls::load(&args.tls.setting(&args.node)?, &args.node)?;
    let path = args.data_dir.join("db");
    std::fs::create_dir_all(&args.data_dir)?;
    let engine: Arc<dyn Engine> = Arc::new(
        RocksEngine::open(&path, EngineOptions::default())
            .with_context(|| format!("opening {}", path.display()))?,
    );
    if let Some(l) = geokv::view::store::load(&*engine)? {
        if l.node(&args.node).is_some() {
            return Ok(l.member_topology());
        }
    }
    let need = |what: &str| anyhow::anyhow!("--join of a new node needs --{what}");
    let client = args.client_address.ok_or_else(|| need("client-address"))?;
    let node = NewNode {
        id: args.node.clone(),
        client_address: client,
        peer_address: args.peer_address.ok_or_else(|| need("peer-address"))?,
        admin_address: args
            .admin_address
            .unwrap_or_else(|| SocketAddr::new(client.ip(), 7072)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(dead) = &args.replace {
        let layout = rt.block_on(prepare_replace(&engine, seed, dead, &node, &tls))?;
        return Ok(layout.member_topology());
    }
    let req = JoinRequest {
        node,
        dc: args.dc.clone().ok_or_else(|| need("dc"))?,
        rack: args.rack.clone().ok_or_else(|| need("rack"))?,
        tokens: 0,
    };
    let layout = rt.block_on(prepare_join(&engine, seed, &req, args.weight, &tls))?;
    Ok(layout.member_topology())
}
