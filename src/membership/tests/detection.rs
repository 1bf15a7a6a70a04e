//! Failure detection under WAN jitter: no false convictions over 10,000
//! rounds, and a dead node is convicted within a bounded time.

use super::sim::{Delays, Sim};
use crate::membership::{silence_for_phi, MembershipConfig, PhiDetector};

const ROUNDS: u64 = 10_000;

/// Heartbeats sent every 1 s and delayed 50 ± 30 ms each, straight into one
/// detector: φ never nears the remote threshold, and silence crosses it
/// after threshold · ln 10 · μ.
#[test]
fn direct_heartbeats_with_wan_jitter() {
    use rand::{Rng, SeedableRng};
    let cfg = MembershipConfig::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut d = PhiDetector::new(cfg.phi_params());
    let mut max_phi: f64 = 0.0;
    let mut last = 0;
    for round in 0..ROUNDS {
        let arrival = round * 1000 + rng.random_range(20..=80);
        // Just before each arrival is the worst moment.
        max_phi = max_phi.max(d.phi(arrival).unwrap_or(0.0));
        d.heartbeat(arrival);
        last = arrival;
    }
    println!(
        "direct: max φ over {ROUNDS} rounds = {max_phi:.3} (remote threshold {})",
        cfg.phi_remote
    );
    assert!(max_phi < cfg.phi_remote / 10.0);

    let local = d.silence_for_phi(cfg.phi_local);
    let remote = d.silence_for_phi(cfg.phi_remote);
    println!(
        "direct: μ = {:.1} ms; dead node convicted after {local} ms (local), {remote} ms (remote)",
        d.mean_ms()
    );
    assert!(d.phi(last + remote).unwrap() > cfg.phi_remote - 1e-9);
    assert!(local <= 20 * 1000 && remote <= 30 * 1000);
}

/// 12 nodes in 3 DCs gossiping through an event queue: 0–2 ms inside a DC,
/// 50 ± 30 ms extra between DCs, timers 0–10 ms late. Heartbeats arrive
/// second-hand, in bursts, yet nobody is convicted in 10,000 rounds; then a
/// node dies and every observer convicts it within the bound.
#[test]
fn gossip_cluster_never_flaps_and_finds_the_dead() {
    for fanout in [1, 2] {
        let cfg = MembershipConfig {
            fanout,
            ..MembershipConfig::default()
        };
        let delays = Delays {
            local: (0, 2),
            remote: (20, 82),
            tick_jitter: (0, 10),
        };
        let mut sim = Sim::new(12, 3, cfg.clone(), delays, 42 + fanout as u64);
        let end = ROUNDS * cfg.gossip_interval_ms;
        sim.run_until(end);
        let false_downs: Vec<_> = sim.transitions.iter().filter(|(_, _, t)| !t.up).collect();
        println!(
            "fanout {fanout}: max φ of live peers over {ROUNDS} rounds: local {:.2}, remote {:.2}",
            sim.max_phi.0, sim.max_phi.1
        );
        assert!(false_downs.is_empty(), "false convictions: {false_downs:?}");
        assert!(sim.max_phi.0 < cfg.phi_local && sim.max_phi.1 < cfg.phi_remote);

        // n00 (dc0) dies; n03, n06, n09 share its DC.
        sim.kill(0);
        sim.run_until(end + 120_000);
        let mut local = Vec::new();
        let mut remote = Vec::new();
        for observer in 1..12 {
            let found = sim
                .transitions
                .iter()
                .find(|(at, o, t)| *at > end && *o == observer && t.node == "n00" && !t.up)
                .map(|(at, _, _)| at - end)
                .unwrap_or_else(|| panic!("n{observer:02} never convicted n00"));
            if sim.same_dc(0, observer) {
                &mut local
            } else {
                &mut remote
            }
            .push(found);
        }
        let others_down = sim
            .transitions
            .iter()
            .filter(|(_, _, t)| !t.up && t.node != "n00")
            .count();
        assert_eq!(others_down, 0, "only the dead node is convicted");

        let (lmin, lmax) = (*local.iter().min().unwrap(), *local.iter().max().unwrap());
        let (rmin, rmax) = (*remote.iter().min().unwrap(), *remote.iter().max().unwrap());
        println!(
            "fanout {fanout}: n00 killed; convicted after {lmin}..{lmax} ms by its DC (φ {}), {rmin}..{rmax} ms by other DCs (φ {})",
            cfg.phi_local, cfg.phi_remote
        );
        // Bound: μ is at most twice the interval (longer gaps are not
        // learned), plus a round of evaluation lag and a round of gossip lag.
        let slack = 2 * cfg.gossip_interval_ms;
        let max_mean = 2.0 * cfg.gossip_interval_ms as f64;
        assert!(lmax <= silence_for_phi(cfg.phi_local, max_mean, 0) + slack);
        assert!(rmax <= silence_for_phi(cfg.phi_remote, max_mean, 0) + slack);
        assert!(lmax < rmin, "remote observers wait longer");
    }
}
