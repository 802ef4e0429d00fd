use super::*;

const MIB: usize = 1 << 20;

fn single(available_mib: usize, budget_mib: Option<usize>) -> Inputs {
    Inputs {
        available: available_mib * MIB,
        budget_mib,
        max_connections: bridle_common::frame::ENCLAVE_MAX_CONNECTIONS,
        call_frame: 1 << 20,
        audit_capacity: crate::audit::DEFAULT_CAPACITY,
        workers: 2,
        cluster: None,
    }
}

fn node(available_mib: usize, budget_mib: Option<usize>) -> Inputs {
    Inputs {
        max_connections: bridle_common::cluster::NODE_MAX_CONNECTIONS,
        call_frame: bridle_common::cluster::MAX_CALL_FRAME,
        cluster: Some(ClusterInputs {
            snapshot_bytes: crate::cluster::DEFAULT_SNAPSHOT_BYTES,
            max_message: crate::cluster::MAX_MESSAGE as usize,
        }),
        ..single(available_mib, budget_mib)
    }
}

#[test]
fn a_standalone_enclave_without_a_budget_gets_what_is_left() {
    let p = plan(&single(1000, None)).unwrap();
    assert!(p.derived);
    assert_eq!(p.available, 1000 * MIB);
    let left = p.available - p.runtime - p.connections - p.decoding - p.audit;
    assert_eq!(p.budget, left / 10 * 9, "{p:?}");
    // A request of a frame, an answer of a frame and 1 MiB more (a status's lists and held
    // payloads), the answers held back, the read buffer.
    assert_eq!(p.connections, 32 * (3 * MIB + MAX_HELD + (64 << 10)));
    assert_eq!(p.audit, crate::audit::DEFAULT_CAPACITY * AUDIT_ENTRY_MAX);
    // Two workers and the two lanes (crate::lanes), each decoding a 1 MiB frame at its
    // largest (8 MiB and 256 KiB), parsing a typed-data request (4 MiB), and building its
    // answer (2 MiB) and encoding it (a buffer of up to 4 MiB).
    assert_eq!(crate::lanes::LANES, 2);
    assert_eq!(p.decoding, (2 + 2) * (18 * MIB + (256 << 10)));
    // A call's arguments decoded for the policy (their nodes, and a frame's data copied
    // and re-encoded) take less than a typed-data parse at the largest frame (the default,
    // also the most `--max-frame` may be), so one term
    // covers either.
    const {
        assert!(
            bridle_common::policy::calls::MAX_DECODE_BYTES + 2 * bridle_common::frame::DEFAULT_MAX_FRAME
                <= bridle_common::typed::MAX_PARSE_BYTES
        )
    };
    // The deployment's 1 536 MiB enclave (≈ 1 450 MiB available) holds 100 000 sessions of
    // the README's policy (charged 8 428 bytes each, SECURITY.md).
    assert!(plan(&single(1450, None)).unwrap().budget > 100_000 * 8_428, "{p}");
    // The VM test's 640 MiB and one core (496–499 MiB available, measured 2026-12-03; 490
    // here) still starts, with room (with two cores it would leave ≈ 40 MiB: give a
    // two-core enclave more memory, DEPLOY.md).
    assert!(plan(&Inputs { workers: 1, ..single(490, None) }).unwrap().budget >= 3 * MIN_BUDGET);
    for mib in [1024 - 90, 1536 - 90] {
        eprintln!("{mib} MiB available: {}", plan(&single(mib, None)).unwrap());
    }
    // An audit entry at its largest: 152 + 346 + 186 bytes.
    assert_eq!(AUDIT_ENTRY_MAX, std::mem::size_of::<bridle_common::audit::AuditEntry>() + 346 + 186);
}

#[test]
fn a_budget_that_does_not_fit_is_refused_with_every_term() {
    // The old default, 1 536 MiB, in a 1 024 MiB enclave.
    let e = plan(&single(960, Some(1536))).unwrap_err();
    assert_eq!(e.available_mib, 960);
    let free = e.ceiling_mib;
    let text = e.to_string();
    for part in [
        "1536 MiB does not fit",
        "960 MiB available",
        "runtime (96 MiB)",
        "32 connections",
        "4 requests being decoded and answered (73 MiB)",
        "audit log",
        &format!("at most {free}"),
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    // A derived budget keeps a tenth of the ceiling back.
    assert!(plan(&single(960, None)).unwrap().budget < free * MIB);
    // Exactly the ceiling fits; one MiB more does not.
    assert_eq!(plan(&single(960, Some(free))).unwrap().budget, free * MIB);
    assert!(plan(&single(960, Some(free + 1))).is_err());
}

#[test]
fn too_little_memory_is_refused_even_without_a_budget() {
    for mib in [0, 1, 100, 300] {
        let e = plan(&single(mib, None)).unwrap_err();
        assert!(e.to_string().starts_with("too little memory for sessions"), "{mib}: {e}");
        assert!(e.to_string().contains("give the enclave more memory"), "{e}");
    }
    assert!(plan(&single(2000, Some(1))).is_err(), "a budget below the minimum");
    // Absurd inputs saturate instead of wrapping.
    let huge = Inputs { budget_mib: Some(usize::MAX), max_connections: usize::MAX, ..single(1 << 40, None) };
    assert!(plan(&huge).is_err());
}

#[test]
fn a_cluster_node_keeps_a_fixed_budget_and_checks_it() {
    // A node's budget is committed to PCR16: the default is a constant, not what is left.
    let p = plan(&node(4096, None)).unwrap();
    assert_eq!(CLUSTER_DEFAULT_BUDGET_MIB, 1536, "changing it changes every default cluster's PCR16");
    assert!(!p.derived);
    assert_eq!(p.budget, CLUSTER_DEFAULT_BUDGET_MIB * MIB);
    assert_eq!(p.cluster, 2 * (64 << 20) + 2 * crate::cluster::MAX_MESSAGE as usize + p.budget / 4);
    assert!(p.runtime + p.connections + p.audit + p.cluster + p.budget <= p.available);
    // A node serves every call on its two workers: no lanes.
    assert_eq!(p.decoding, 2 * per_worker(bridle_common::cluster::MAX_CALL_FRAME));
    // Too small a machine for it: refused, naming the cluster's terms.
    let e = plan(&node(1024, None)).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("cluster log")
            && text.contains("a cluster node's default")
            && text.contains("the same on every node"),
        "{e}"
    );
    assert_eq!(plan(&node(4096, Some(100))).unwrap().budget, 100 * MIB);
}

#[test]
fn mem_available_is_read_from_meminfo() {
    let text = "MemTotal:        1015808 kB\nMemFree:          900000 kB\nMemAvailable:     983040 kB\nBuffers: 0 kB\n";
    assert_eq!(mem_available(text), Some(983_040 * 1024));
    for bad in [
        "",
        "MemTotal: 5 kB\n",
        "MemAvailable: lots kB\n",
        "MemAvailable: 5\n",
        "MemAvailable: 99999999999999999999 kB\n",
    ] {
        assert_eq!(mem_available(bad), None, "{bad:?}");
    }
    // This machine's own file parses (the enclave's main reads it the same way).
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        assert!(mem_available(&text).unwrap() > 0);
    }
}
