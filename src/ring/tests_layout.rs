//! A ring derived from a layout: the seed layout gives today's ring exactly.

use proptest::prelude::*;

use super::tests_prop::{arb_case, build_topology};
use super::*;

fn assert_same(a: &Ring, b: &Ring) {
    assert_eq!(a.nodes, b.nodes);
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.owners, b.owners);
    assert_eq!(a.keyspaces, b.keyspaces);
}

#[test]
fn the_dev_seed_layout_gives_todays_ring() {
    let topo = Topology::dev();
    let (a, b) = (Ring::new(&topo), Ring::from_layout(&Layout::seed(&topo)));
    assert_same(&a, &b);
    assert_eq!(b.layout_version(), 1);
    assert_eq!(b.topology().keyspaces, topo.keyspaces);
    assert_eq!(a.topology(), &topo);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_seed_layout_gives_todays_ring(case in arb_case()) {
        let (dcs, rfs, _) = case;
        let topo = build_topology(&dcs, &[("ks", rfs.clone()), ("one", vec![1; rfs.len()])]);
        let ring = Ring::from_layout(&Layout::seed(&topo));
        // Today's construction, inlined: every node's vnode_token(id, 0..vnodes).
        let mut vnodes: Vec<(Token, NodeIdx)> = topo
            .nodes()
            .iter()
            .flat_map(|n| (0..n.vnodes).map(move |i| (vnode_token(&n.id, i), n.idx)))
            .collect();
        vnodes.sort_unstable();
        vnodes.dedup_by_key(|v| v.0);
        let (tokens, owners): (Vec<Token>, Vec<NodeIdx>) = vnodes.into_iter().unzip();
        prop_assert_eq!(&ring.tokens, &tokens);
        prop_assert_eq!(&ring.owners, &owners);
        assert_same(&ring, &Ring::new(&topo));
    }
}
