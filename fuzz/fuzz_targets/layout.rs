//! A cluster layout as a peer sends it (JSON in a `LayoutMessage`): a
//! document that decodes must not make the ring, the pending ranges, the
//! placement of a key or the merge with our own layout panic, since a node
//! builds its view from it (and persists it, so a panic there would keep it
//! from restarting).
#![no_main]

use geokv::layout::Layout;
use geokv::ring::{PendingRanges, Ring};
use geokv::topology::{Topology, DEV_TOPOLOGY_YAML};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(theirs) = serde_json::from_slice::<Layout>(data) else {
        return;
    };
    let _ = theirs.digest();
    let ring = Ring::from_layout(&theirs);
    for keyspace in ring
        .topology()
        .keyspaces
        .keys()
        .cloned()
        .collect::<Vec<_>>()
    {
        for key in [&b""[..], b"a", b"key-17", b"\xff\xff"] {
            let _ = ring.replicas(&keyspace, key);
        }
    }
    let _ = PendingRanges::of_layout(&theirs);
    let _ = theirs.settled();
    let ours = Layout::seed(&Topology::parse("dev", DEV_TOPOLOGY_YAML).expect("the dev topology"));
    let _ = ours.merge(theirs);
});
