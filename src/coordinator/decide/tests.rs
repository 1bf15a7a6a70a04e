//! `check_alive` and `awaited_dcs` as the pure functions they are: worked
//! cases, and properties over any counts.

use super::*;
use crate::consistency::AckCounts;
use proptest::prelude::*;
use tonic::Code;

fn alive(dc1: u32, dc2: u32) -> BTreeMap<String, u32> {
    BTreeMap::from([("dc1".to_string(), dc1), ("dc2".to_string(), dc2)])
}

fn each_quorum() -> Requirement {
    Requirement::EachDc {
        per_dc: vec![("dc1".into(), 2), ("dc2".into(), 2)],
    }
}

#[test]
fn too_few_live_replicas_is_unavailable_naming_the_datacenter() {
    let local = Requirement::Local {
        dc: "dc1".into(),
        count: 2,
    };
    let level = ConsistencyLevel::LocalQuorum;
    assert!(check_alive(level, &local, &alive(2, 0)).is_ok());
    let e = check_alive(level, &local, &alive(1, 3)).expect_err("one alive in dc1");
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.nothing_applied());
    let text = e.to_string();
    assert!(
        text.contains("2 replica acknowledgement(s) required in dc1"),
        "{text}"
    );
    assert!(text.contains("only 1 replica(s) alive"), "{text}");
    let e = check_alive(ConsistencyLevel::EachQuorum, &each_quorum(), &alive(3, 1));
    let text = e.expect_err("dc2 short").to_string();
    assert!(text.contains("in dc2") && text.contains("only 1"), "{text}");
    // ANY needs one replica alive: a hint cannot carry a new write.
    let any = check_alive(ConsistencyLevel::Any, &Requirement::AnyOrHint, &alive(0, 0));
    assert!(any.expect_err("none alive").to_string().contains("only 0"));
}

#[test]
fn a_total_count_beyond_the_local_replicas_waits_on_every_remote_datacenter() {
    let remote = ["dc2".to_string(), "dc3".to_string()];
    let three = Requirement::Total { count: 3 };
    let got = awaited_dcs("dc1", &three, &alive(2, 3), &remote);
    let needs: Vec<(&str, u32)> = got.iter().map(|a| (a.dc.as_str(), a.need)).collect();
    assert_eq!(needs, [("dc2", 1), ("dc3", 1)]);
    assert!(awaited_dcs("dc1", &three, &alive(3, 0), &remote).is_empty());
    let got = awaited_dcs("dc1", &each_quorum(), &alive(3, 3), &remote);
    let needs: Vec<(&str, u32)> = got.iter().map(|a| (a.dc.as_str(), a.need)).collect();
    assert_eq!(needs, [("dc2", 2)], "its own datacenter is not awaited");
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let dc = prop_oneof![Just("dc1".to_string()), Just("dc2".to_string())];
    prop_oneof![
        Just(Requirement::AnyOrHint),
        (0u32..6).prop_map(|count| Requirement::Total { count }),
        (dc, 0u32..4).prop_map(|(dc, count)| Requirement::Local { dc, count }),
        (0u32..4, 0u32..4).prop_map(|(a, b)| Requirement::EachDc {
            per_dc: vec![("dc1".into(), a), ("dc2".into(), b)],
        }),
    ]
}

proptest! {
    /// The live replicas pass the check exactly when their acknowledgements
    /// would meet the level; a refusal is always UNAVAILABLE, nothing applied.
    #[test]
    fn alive_passes_exactly_when_all_of_them_would_meet_the_level(
        req in requirement(), dc1 in 0u32..5, dc2 in 0u32..5,
    ) {
        let alive = alive(dc1, dc2);
        let got = check_alive(ConsistencyLevel::Quorum, &req, &alive);
        let acks = AckCounts { per_dc: alive, hints: 0 };
        prop_assert_eq!(got.is_ok(), req.is_met(&acks));
        if let Err(e) = got {
            prop_assert_eq!(e.code(), Code::Unavailable);
            prop_assert!(e.nothing_applied());
        }
    }

    /// Only remote datacenters are awaited, each at most once and for a
    /// need above zero, none for ANY or a local level; for the others, the
    /// local live replicas plus what is awaited meet the level whenever
    /// every live replica would.
    #[test]
    fn only_remote_datacenters_are_awaited_and_they_cover_the_shortfall(
        req in requirement(), dc1 in 0u32..5, dc2 in 0u32..5,
    ) {
        let alive = alive(dc1, dc2);
        let got = awaited_dcs("dc1", &req, &alive, &["dc2".to_string()]);
        prop_assert!(got.len() <= 1);
        for a in &got {
            prop_assert_eq!(a.dc.as_str(), "dc2");
            prop_assert!(a.need > 0);
            prop_assert_eq!(a.pending, None);
        }
        let local_only = matches!(req, Requirement::Local { .. } | Requirement::AnyOrHint);
        if local_only {
            prop_assert!(got.is_empty());
        }
        let acks = AckCounts { per_dc: alive, hints: 0 };
        if req.is_met(&acks) && !local_only {
            let mut with = BTreeMap::from([("dc1".to_string(), dc1)]);
            for a in &got {
                with.insert(a.dc.clone(), a.need);
            }
            let awaited = AckCounts { per_dc: with, hints: 0 };
            prop_assert!(req.is_met(&awaited), "{:?} short with {:?}", req, got);
        }
    }
}
