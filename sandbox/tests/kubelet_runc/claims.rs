//! A PersistentVolumeClaim's volume in user-namespaced containers: what one Pod's root and user
//! 1000 wrote is theirs in the next Pod, whatever host id range that Pod gets.

use std::os::unix::fs::MetadataExt;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::PostParams;
use kube::Api;
use serde_json::json;

use crate::support::*;

fn claim_pod(name: &str, script: &str) -> serde_json::Value {
    let mut p = shell_pod(name, script, json!({}));
    p["spec"]["hostUsers"] = json!(false);
    p["spec"]["volumes"] =
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "store"}}]);
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_keeps_its_owners_across_user_namespaced_pods_of_different_ranges() {
    let _ = images();
    let s = runc_setup();
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "store"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap();
    let created = Api::<PersistentVolumeClaim>::namespaced(s.client.clone(), "default")
        .create(&PostParams::default(), &claim)
        .await
        .unwrap();
    let dir = s
        .root
        .path()
        .join("claims/default")
        .join(format!("store-{}", created.metadata.uid.unwrap()));

    // The first Pod (kept, so its range stays taken) writes as root and as user 1000.
    let first = run_all(
        &s,
        vec![claim_pod(
            "first",
            "set -e; mkdir -p /data/layers; echo root > /data/layers/by-root; \
             touch /data/by-user && chown 1000:1000 /data/by-user; \
             chmod 700 /data/layers; id -u > /dev/termination-log",
        )],
    )
    .await;
    assert_eq!(message(&first[0]), "0\n", "{:?}", first[0].status);
    let first_owner = std::fs::metadata(&dir).unwrap().uid();
    assert!(
        first_owner >= 65536,
        "the volume is owned in the Pod's range: {first_owner}"
    );

    // The second Pod gets another range and finds the files as their writers left them, and
    // writes into the private directory root made.
    let second = run_all(
        &s,
        vec![claim_pod(
            "second",
            "set -e; cat /data/layers/by-root >/dev/null; echo more > /data/layers/by-second; \
             (stat -c %u /data/layers/by-root; stat -c %u:%g /data/by-user; cat /proc/self/uid_map | tr -s ' ') \
             > /dev/termination-log",
        )],
    )
    .await;
    let text = message(&second[0]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.get(..2), Some(&["0", "1000:1000"][..]), "{text}");
    let second_owner = std::fs::metadata(&dir).unwrap().uid();
    assert_ne!(second_owner, first_owner, "another range: {text}");
    assert!(lines[2].contains(&second_owner.to_string()), "{text}");
    assert_eq!(
        std::fs::metadata(dir.join("by-user")).unwrap().uid(),
        second_owner + 1000
    );
    s.stop().await;
}
