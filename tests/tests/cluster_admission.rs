//! Who may join an enclave cluster (ATTESTATION.md, "Cluster"): a node whose (mock)
//! attestation reports another image, or another configuration (PCR16), is refused at the
//! channel handshake — it never becomes a member and never receives the cluster's state or
//! any key; the cluster serves on.

use bridle_tests::cluster::{cap_policy, transfer, Cluster};
use bridle_tests::Actor;
use std::time::Duration;

const OTHER_PCR0: &str =
    "aa0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_image_or_configuration_cannot_join() {
    let mut c = Cluster::start(3).await;
    let g = c.grant(0, &Actor::random(), &Actor::random(), &cap_policy(100)).await;
    let other_image = c.add_node(&["--dev-pcr0", OTHER_PCR0]).await;
    c.start_node(other_image, false);
    let other_config = c.add_node(&["--stamp-window", "61"]).await;
    c.start_node(other_config, false);

    // Long enough for several join attempts.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for i in [other_image, other_config] {
        let v = c.info(i).await.expect("info");
        assert_eq!(v["ready"], false, "node {i} received the cluster's state: {v}");
        assert_eq!(v["role"], "joining", "{v}");
        // Its host cannot sign anything: it has nothing, and the members refuse it.
        let (s, body) = c.post(i, "/v1/sign", &transfer(&g, 1, 1)).await;
        assert_ne!(s, 200, "{body}");
    }
    let l = c.wait_leader(Duration::from_secs(10)).await;
    let v = c.info(l).await.unwrap();
    assert_eq!(v["members"].as_array().unwrap().len(), 3, "no new member: {v}");

    // The cluster serves on.
    let (s, v, _) = c.client().sign_until_decided(0, &transfer(&g, 2, 1), Duration::from_secs(20)).await;
    assert_eq!(s, 200, "{v}");
}
