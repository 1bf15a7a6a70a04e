//! `geokv getendpoints KEYSPACE KEY --endpoint ADMIN_ADDR` (nodetool's
//! getendpoints): which nodes replicate a key, by datacenter, and which
//! pending replicas also receive its writes while a movement is in progress.
//!
//! Owns the question's arithmetic over a fetched layout ([`endpoints`],
//! pure: the same `Ring::from_layout` and `PendingRanges` the nodes use, so
//! the answer is the nodes' own) and its printing. Must not talk to replicas.
use anyhow::Context;
use geokv::layout::Layout;
use geokv::ring::{token_of, PendingRanges, Ring};
use serde::Serialize;

use super::render::table;

/// Arguments of `geokv getendpoints`.
#[derive(clap::Args, Debug)]
pub struct EndpointsArgs {
    pub keyspace: String,
    /// The key, as the client sends it (its UTF-8 bytes).
    pub key: String,
    /// A node's admin address (host:port).
    #[arg(long, env = "GEOKV_ADMIN_ENDPOINT", default_value = "127.0.0.11:7072")]
    pub endpoint: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub tls: super::admin_http::AdminTlsArgs,
}

/// One node that holds (or is about to hold) the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub dc: String,
    pub rack: String,
    pub client_address: String,
    /// `replica` (walk order within its datacenter, the first is the
    /// range's primary) or `pending` (gets writes until the movement ends).
    pub role: &'static str,
}

/// The replicas of `key` in `keyspace` under `layout`, datacenter by
/// datacenter in walk order, then its pending replicas; and the key's token.
pub fn endpoints(
    layout: &Layout,
    keyspace: &str,
    key: &[u8],
) -> anyhow::Result<(u64, Vec<Endpoint>)> {
    let ring = Ring::from_layout(layout);
    let token = token_of(key);
    let set = ring.replicas(keyspace, key)?;
    let pending = PendingRanges::of_layout(layout)?;
    let describe = |idx, role| {
        let n = ring.node(idx);
        Endpoint {
            id: n.id.clone(),
            dc: n.dc.clone(),
            rack: n.rack.clone(),
            client_address: n.client_address.to_string(),
            role,
        }
    };
    let mut out: Vec<Endpoint> = set.all().map(|i| describe(i, "replica")).collect();
    for dc in pending.for_token(keyspace, token) {
        out.extend(dc.nodes.iter().map(|&i| describe(i, "pending")));
    }
    Ok((token, out))
}

/// Runs `geokv getendpoints`.
pub async fn run(args: EndpointsArgs) -> anyhow::Result<()> {
    let body = super::ring::http(&args.endpoint, "GET", "/layout").await?;
    let layout: Layout = serde_json::from_str(&body).context("decoding the layout")?;
    let (token, rows) = endpoints(&layout, &args.keyspace, args.key.as_bytes())?;
    if args.json {
        let v = serde_json::json!({
            "keyspace": args.keyspace,
            "key": args.key,
            "token": token,
            "layout_version": layout.version,
            "endpoints": rows,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "key {:?} of keyspace {} has token {token} (layout v{})",
        args.key, args.keyspace, layout.version
    );
    let mut t = table(["NODE", "DC", "RACK", "CLIENT ADDRESS", "ROLE"]);
    for e in &rows {
        t.add_row([&e.id, &e.dc, &e.rack, &e.client_address, e.role]);
    }
    println!("{t}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use geokv::topology::Topology;

    #[test]
    fn endpoints_are_the_rings_replicas_per_datacenter() {
        let topo = Topology::dev();
        let layout = Layout::seed(&topo);
        let ring = Ring::new(&topo);
        for key in ["a", "user:42", "zzz"] {
            let (token, got) = endpoints(&layout, "default", key.as_bytes()).expect("endpoints");
            assert_eq!(token, token_of(key.as_bytes()));
            let want: Vec<String> = (ring.replicas("default", key.as_bytes()).unwrap().all())
                .map(|i| ring.node(i).id.clone())
                .collect();
            let ids: Vec<String> = got.iter().map(|e| e.id.clone()).collect();
            assert_eq!(ids, want, "{key}");
            assert!(got.iter().all(|e| e.role == "replica"), "nothing pending");
            let dcs: std::collections::BTreeSet<&str> = got.iter().map(|e| e.dc.as_str()).collect();
            assert_eq!(dcs.len(), topo.datacenters.len(), "every dc with rf > 0");
        }
    }

    #[test]
    fn an_unknown_keyspace_is_an_error() {
        let layout = Layout::seed(&Topology::dev());
        let e = endpoints(&layout, "nope", b"k").expect_err("unknown keyspace");
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
