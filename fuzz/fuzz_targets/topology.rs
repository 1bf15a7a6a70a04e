//! A topology file: parsing and validation answer a topology or a typed
//! error, and a valid one builds a ring that places keys.
#![no_main]

use geokv::ring::Ring;
use geokv::topology::Topology;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(topology) = Topology::parse("fuzz", yaml) else {
        return;
    };
    let ring = Ring::new(&topology);
    for keyspace in topology.keyspaces.keys().cloned().collect::<Vec<_>>() {
        let _ = ring.replicas(&keyspace, b"key");
    }
});
