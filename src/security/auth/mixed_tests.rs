//! A rolling upgrade from the build before the per-cell merge
//! (review-auth29 M1): a node of that build offers and takes only the old
//! versioned form (`{"version": N, "roles": {NAME: {"secret", "grants"}}}`,
//! the higher version winning whole) and refuses the current one. An
//! upgraded node answers an offer in the old form in that form, so a
//! change made on an upgraded node reaches the old nodes at their next
//! anti-entropy round, and their echo of it changes nothing.

use super::sync::{from_message, serve, to_message};
use super::*;
use crate::proto::v1::internode::AuthMessage;
use std::collections::BTreeMap;

/// The old build's state as it decoded it (`version` required, unknown
/// fields ignored) and its merge (the higher version wins whole).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Old {
    version: u64,
    #[serde(default)]
    roles: BTreeMap<String, Role>,
}

impl Old {
    fn offer(&self) -> AuthMessage {
        AuthMessage {
            version: self.version,
            json: serde_json::to_vec(self).expect("serialises"),
        }
    }

    /// One anti-entropy round of the old node with `upgraded`: its offer,
    /// then the answer taken by the old rule.
    fn round_with(self, upgraded: &Auth) -> Old {
        let answer = serve(upgraded, &self.offer()).expect("the offer is taken");
        let theirs: Old = serde_json::from_slice(&answer.json).expect("the old build decodes it");
        assert_eq!(answer.version, theirs.version);
        match theirs.version > self.version {
            true => theirs,
            false => self,
        }
    }
}

fn role(secret: Option<&str>, grants: &[(&str, Perm)]) -> Role {
    let mut r = Role {
        secret: secret.map(str::to_string),
        grants: BTreeMap::new(),
    };
    for (ks, p) in grants {
        r.grants.entry(ks.to_string()).or_default().insert(*p);
    }
    r
}

/// The cluster before the upgrade: the admin and `app` reading `ks`.
fn before_the_upgrade() -> Old {
    let mut roles = BTreeMap::new();
    let admin = role(Some("$argon2id$admin"), &[(ANY_KEYSPACE, Perm::Admin)]);
    roles.insert("admin".to_string(), admin);
    roles.insert("app".to_string(), role(None, &[("ks", Perm::Read)]));
    Old { version: 3, roles }
}

#[test]
fn an_old_build_learns_the_changes_made_on_an_upgraded_node() {
    let upgraded = Auth::new(true, AuthState::default(), None);
    let old = before_the_upgrade().round_with(&upgraded);
    assert_eq!(old, before_the_upgrade(), "nothing newer yet");
    assert_eq!(*upgraded.state().roles(), old.roles, "the old state loaded");

    upgraded
        .change(|s| s.with_grant("app", "ks", Perm::Write))
        .unwrap();
    upgraded
        .change(|s| s.with_role("svc", None, &[("ks", Perm::Read)]))
        .unwrap();
    upgraded
        .change(|s| s.with_revoke("app", "ks", Perm::Read))
        .unwrap();
    let old = old.round_with(&upgraded);
    assert_eq!(
        old.roles,
        *upgraded.state().roles(),
        "the old node took them"
    );
    assert_eq!(old.roles["app"], role(None, &[("ks", Perm::Write)]));

    // Its echo (the same roles, offered back in the old form) changes
    // nothing on either side.
    let public = upgraded.state().public();
    let again = old.clone().round_with(&upgraded);
    assert_eq!(again, old);
    assert_eq!(upgraded.state().public(), public);

    // Later changes, at once and in the same millisecond, still reach it.
    for _ in 0..2 {
        upgraded.change(|s| s.without_role("svc")).unwrap();
        upgraded
            .change(|s| s.with_role("svc", None, &[("ks", Perm::Admin)]))
            .unwrap();
    }
    upgraded.change(|s| s.without_role("svc")).unwrap();
    let old = old.round_with(&upgraded);
    assert!(!old.roles.contains_key("svc"), "{old:?}");
    let s = upgraded.state();
    assert_eq!(s.decide("svc", "ks", Perm::Read), Decision::UnknownRole);
    assert_eq!(s.decide("app", "ks", Perm::Write), Decision::Allow);
    assert_eq!(s.decide("app", "ks", Perm::Read), Decision::Deny);
    assert_eq!(old.roles, *s.roles());
}

/// Upgraded nodes answer each other (and an empty offer) in the current
/// form, which the old build refuses: only an offer in the old form gets
/// the old form back.
#[test]
fn upgraded_nodes_answer_each_other_in_the_current_form() {
    let (a, b) = (
        Auth::new(true, AuthState::default(), None),
        Auth::new(true, AuthState::default(), None),
    );
    a.change(|s| s.with_role("app", None, &[("ks", Perm::Read)]))
        .unwrap();
    for offer in [to_message(&a.state()), AuthMessage::default()] {
        let answer = serve(&b, &offer).unwrap();
        let theirs = from_message(&answer).unwrap().expect("a state");
        assert_eq!(theirs.digest(), b.state().digest());
        assert!(serde_json::from_slice::<Old>(&answer.json).is_err());
    }
    assert_eq!(a.state().digest(), b.state().digest());
}
