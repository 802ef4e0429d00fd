//! The attested handshake between mock enclaves sharing a MockCa: who is admitted,
//! who is refused and with which error, and what a relay can do to the messages.

mod common;

use std::sync::{Arc, Mutex};

use bridle_attestation::{MockCa, MockNsm, VerifyError, PCR_LEN};
use bridle_channel::{AdmitError, AllowedImages, HandshakeError, HandshakeStep, Initiator, Responder, SameImage};
use common::*;

#[test]
fn two_nodes_handshake_then_talk_both_ways() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let (state_a, msg1) = Initiator::start(&a.id, CLUSTER).unwrap();
    assert_eq!(msg1.len(), 33, "type byte and an ephemeral key");
    let (state_b, msg2) = Responder::respond(&b.id, CLUSTER, &msg1).unwrap();
    let (mut to_b, peer_b, msg3) = state_a.finish(&msg2, &a.admit).unwrap();
    let (mut to_a, peer_a) = state_b.finish(&msg3, &b.admit).unwrap();

    // Each side sees the other's verified attestation.
    assert_eq!(peer_b.static_key, b.id.static_public_key());
    assert_eq!(peer_a.static_key, a.id.static_public_key());
    assert_eq!(peer_a.user_data, b"cluster=test members=3");
    assert_eq!(peer_a.pcr(16), Some(a.pcr16.as_slice()));
    assert_eq!(peer_b.pcr(0), Some(&b.nsm.image().pcr0[..]));
    assert_eq!(peer_b.module_id, b.nsm.module_id());
    assert!(!peer_b.debug && peer_b.timestamp_ms > 0 && peer_b.digest == "SHA384");
    assert_eq!(to_b.peer(), &peer_b);
    assert_eq!(to_a.peer(), &peer_a);
    assert_eq!(to_a.channel_id(), to_b.channel_id());
    assert!(to_b.is_initiator() && !to_a.is_initiator());

    for (i, len) in [0usize, 1, 1000, 65_502, 65_503, 300_000].into_iter().enumerate() {
        let msg: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        assert_eq!(to_a.open(&to_b.seal(&msg).unwrap()).unwrap(), msg);
        let reply = [msg.as_slice(), b"ack"].concat();
        assert_eq!(to_b.open(&to_a.seal(&reply).unwrap()).unwrap(), reply);
    }
    assert_eq!(to_b.messages_sent(), 6);
    assert_eq!(to_a.highest_received(), Some(5));

    // A second handshake between the same nodes is another channel.
    let (again_b, again_a) = handshake(&a.id, &a.admit, &b.id, &b.admit).unwrap();
    assert_ne!(again_b.channel_id(), to_b.channel_id());
    let mut again_a = again_a;
    let frame = to_b.seal(b"old channel").unwrap();
    assert!(again_a.open(&frame).is_err(), "a frame of one channel is refused by another");
    drop(again_b);
}

#[test]
fn another_image_is_refused_by_same_image_with_expected_and_actual() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    let b = node_with(&ca, image(7), "cluster=test members=3");
    let err = handshake(&a.id, &a.admit, &b.id, &b.admit).unwrap_err();
    let HandshakeError::Refused(AdmitError::PcrMismatch { index: 0, expected, actual }) = &err else {
        panic!("{err}");
    };
    assert_eq!(expected, &a.nsm.image().pcr0.to_vec());
    assert_eq!(actual.as_deref(), Some(&[7u8; PCR_LEN][..]));
    let text = err.to_string();
    assert!(text.contains(&hex::encode(a.nsm.image().pcr0)) && text.contains(&hex::encode([7u8; PCR_LEN])), "{text}");

    // The responder refuses too, at message 3, when b initiates with a policy that
    // admits a.
    let accept_a = AllowedImages::new()
        .allow(a.nsm.image().pcr0, a.nsm.image().pcr1, a.nsm.image().pcr2)
        .require_pcr(16, a.pcr16.clone());
    let (state_b, msg1) = Initiator::start(&b.id, CLUSTER).unwrap();
    let (state_a, msg2) = Responder::respond(&a.id, CLUSTER, &msg1).unwrap();
    let (_, _, msg3) = state_b.finish(&msg2, &accept_a).unwrap();
    let err = state_a.finish(&msg3, &a.admit).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(AdmitError::PcrMismatch { index: 0, .. })), "{err}");
}

#[test]
fn another_configuration_pcr16_is_refused() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    let b = node_with(&ca, image(1), "cluster=test members=4");
    let err = handshake(&a.id, &a.admit, &b.id, &b.admit).unwrap_err();
    match &err {
        HandshakeError::Refused(AdmitError::PcrMismatch { index: 16, expected, actual }) => {
            assert_eq!(expected, &a.pcr16);
            assert_eq!(actual.as_ref(), Some(&b.pcr16));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_node_of_another_root_is_refused() {
    let (ca, other_ca) = (MockCa::generate().unwrap(), MockCa::generate().unwrap());
    let a = node(&ca);
    let b = node(&other_ca);
    for err in [
        handshake(&a.id, &a.admit, &b.id, &b.admit).unwrap_err(),
        handshake(&b.id, &b.admit, &a.id, &a.admit).unwrap_err(),
    ] {
        assert!(matches!(err, HandshakeError::Attestation { error: VerifyError::UntrustedRoot { .. }, .. }), "{err}");
    }
}

#[test]
fn a_document_replayed_from_another_handshake_is_refused() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    let b = node(&ca);
    // b's NSM hands out the document of its first handshake again.
    let b_replay = identity(replaying(b.nsm.clone()), &ca, "cluster=test members=3");
    handshake(&a.id, &a.admit, &b_replay, &b.admit).expect("first handshake");
    let (state_a, msg1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (_, msg2) = Responder::respond(&b_replay, CLUSTER, &msg1).unwrap();
    let err = state_a.finish(&msg2, &a.admit).unwrap_err();
    let HandshakeError::Attestation {
        step: HandshakeStep::Msg2,
        error: VerifyError::NonceMismatch { expected, actual },
    } = &err
    else {
        panic!("{err}");
    };
    assert_ne!(Some(expected), actual.as_ref());

    // Same from the initiator's side: its replayed document fails at message 3.
    let a_replay = identity(replaying(a.nsm.clone()), &ca, "cluster=test members=3");
    handshake(&a_replay, &a.admit, &b.id, &b.admit).expect("first handshake");
    let err = handshake(&a_replay, &a.admit, &b.id, &b.admit).unwrap_err();
    assert!(
        matches!(
            err,
            HandshakeError::Attestation { step: HandshakeStep::Msg3, error: VerifyError::NonceMismatch { .. } }
        ),
        "{err}"
    );
}

#[test]
fn a_document_for_another_key_is_refused() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    // b's documents name a's static key instead of b's own.
    let b_lying = identity(key_swapping(b.nsm.clone(), a.id.static_public_key().to_vec()), &ca, "x");
    let err = handshake(&a.id, &a.admit, &b_lying, &b.admit).unwrap_err();
    match err {
        HandshakeError::Attestation { error: VerifyError::PublicKeyMismatch { expected, actual }, .. } => {
            assert_eq!(expected, b_lying.static_public_key().to_vec());
            assert_eq!(actual, Some(a.id.static_public_key().to_vec()));
        }
        other => panic!("{other}"),
    }
    let a_lying = identity(key_swapping(a.nsm.clone(), vec![9; 32]), &ca, "x");
    let err = handshake(&a_lying, &a.admit, &b.id, &b.admit).unwrap_err();
    assert!(matches!(err, HandshakeError::Attestation { error: VerifyError::PublicKeyMismatch { .. }, .. }), "{err}");
}

#[test]
fn a_relay_altering_any_handshake_byte_breaks_the_handshake() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let (_, msg1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (_, msg2) = Responder::respond(&b.id, CLUSTER, &msg1).unwrap();
    let positions = |len: usize| [0, 1, 16, 32, len / 2, len - 17, len - 1];

    // Message 1: the responder cannot tell, but the initiator's finish fails.
    for pos in positions(msg1.len()) {
        let (state_a, mut m1) = Initiator::start(&a.id, CLUSTER).unwrap();
        m1[pos] ^= 0x01;
        let err = match Responder::respond(&b.id, CLUSTER, &m1) {
            Err(e) => e,
            Ok((_, m2)) => state_a.finish(&m2, &a.admit).unwrap_err(),
        };
        assert!(matches!(err, HandshakeError::Malformed { .. } | HandshakeError::Noise { .. }), "msg1[{pos}]: {err}");
    }
    // Message 2 and 3.
    for pos in positions(msg2.len()) {
        let (state_a, m1) = Initiator::start(&a.id, CLUSTER).unwrap();
        let (_, mut m2) = Responder::respond(&b.id, CLUSTER, &m1).unwrap();
        m2[pos] ^= 0x80;
        let err = state_a.finish(&m2, &a.admit).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed { .. } | HandshakeError::Noise { .. }), "msg2[{pos}]: {err}");
    }
    let (state_a, m1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (_, m2) = Responder::respond(&b.id, CLUSTER, &m1).unwrap();
    let (_, _, msg3) = state_a.finish(&m2, &a.admit).unwrap();
    for pos in positions(msg3.len()) {
        let (state_a, m1) = Initiator::start(&a.id, CLUSTER).unwrap();
        let (state_b, m2) = Responder::respond(&b.id, CLUSTER, &m1).unwrap();
        let (_, _, mut m3) = state_a.finish(&m2, &a.admit).unwrap();
        m3[pos] ^= 0x04;
        let err = state_b.finish(&m3, &b.admit).unwrap_err();
        assert!(matches!(err, HandshakeError::Malformed { .. } | HandshakeError::Noise { .. }), "msg3[{pos}]: {err}");
    }
    // Truncated, extended, empty, or a message of another kind.
    let (state_a, m1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (state_b, m2) = Responder::respond(&b.id, CLUSTER, &m1).unwrap();
    assert!(Responder::respond(&b.id, CLUSTER, &m1[..20]).is_err());
    assert!(Responder::respond(&b.id, CLUSTER, &[m1.as_slice(), b"x"].concat()).is_err());
    assert!(Responder::respond(&b.id, CLUSTER, &m2).is_err());
    assert!(Responder::respond(&b.id, CLUSTER, &[]).is_err());
    let (_, _, m3) = Initiator::start(&a.id, CLUSTER)
        .and_then(|(s, m)| Responder::respond(&b.id, CLUSTER, &m).map(|(_, m2)| (s, m2)))
        .and_then(|(s, m2)| s.finish(&m2, &a.admit))
        .unwrap();
    // State machines are consumed by a failure: a fresh pair for each check.
    assert!(state_b.finish(&m3, &b.admit).is_err(), "message 3 of another handshake");
    assert!(state_a.finish(&m2[..m2.len() - 1], &a.admit).is_err());
}

#[test]
fn a_man_in_the_middle_cannot_pass_for_a_node() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    // Mallory sits between a and b. She records b's documents by handshaking with b
    // herself, then answers a with her own Noise keys and b's recorded document.
    let log = Arc::new(Mutex::new(Vec::new()));
    let b_logged = identity(recording(b.nsm.clone(), log.clone()), &ca, "cluster=test members=3");
    let (mallory_state, m1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (_, _) = Responder::respond(&b_logged, CLUSTER, &m1).unwrap();
    drop(mallory_state);
    let b_doc = log.lock().unwrap()[0].clone();
    let mallory = identity(fixed(Arc::new(MockNsm::with_ca(&ca, image(200)).unwrap()), b_doc), &ca, "m");
    let err = handshake(&a.id, &a.admit, &mallory, &b.admit).unwrap_err();
    // The document is b's (right image, right root), but bound to another handshake
    // and another static key.
    assert!(
        matches!(
            err,
            HandshakeError::Attestation {
                step: HandshakeStep::Msg2,
                error: VerifyError::NonceMismatch { .. } | VerifyError::PublicKeyMismatch { .. }
            }
        ),
        "{err}"
    );

    // Mallory relays a's message 1 to b and b's message 2 to a untouched, but puts
    // her own ephemeral key in a's message 1: a cannot read b's answer.
    let (state_a, mut m1) = Initiator::start(&a.id, CLUSTER).unwrap();
    let (_, mallory_m1) = Initiator::start(&mallory, CLUSTER).unwrap();
    m1.copy_from_slice(&mallory_m1);
    let (_, m2) = Responder::respond(&b.id, CLUSTER, &m1).unwrap();
    assert!(matches!(state_a.finish(&m2, &a.admit), Err(HandshakeError::Noise { step: HandshakeStep::Msg2, .. })));

    // Two nodes told different cluster ids never agree.
    let (state_a, m1) = Initiator::start(&a.id, b"cluster-one").unwrap();
    let (_, m2) = Responder::respond(&b.id, b"cluster-two", &m1).unwrap();
    assert!(matches!(state_a.finish(&m2, &a.admit), Err(HandshakeError::Noise { step: HandshakeStep::Msg2, .. })));
}

#[test]
fn debug_enclaves_only_when_allowed() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    let debug_nsm = Arc::new(MockNsm::new_debug_with_ca(&ca).unwrap());
    let debug_id = identity(debug_nsm.clone(), &ca, "dev");
    let err = handshake(&a.id, &a.admit, &debug_id, &a.admit).unwrap_err();
    assert!(matches!(err, HandshakeError::Attestation { error: VerifyError::DebugMode { index: 0 }, .. }), "{err}");

    // Two debug enclaves whose policies allow debug explicitly.
    let dev = SameImage::local(debug_nsm.as_ref(), vec![0; PCR_LEN]).unwrap().allow_debug(true);
    let other = identity(Arc::new(MockNsm::new_debug_with_ca(&ca).unwrap()), &ca, "dev");
    let (chan, _) = handshake(&debug_id, &dev, &other, &dev).unwrap();
    assert!(chan.peer().debug);
}

#[test]
fn allowed_images_admit_a_signed_release_during_an_upgrade() {
    let ca = MockCa::generate().unwrap();
    let release_key = [0x88; PCR_LEN];
    let old = node_with(&ca, image(1).with_pcr8(release_key), "cfg");
    let new = node_with(&ca, image(2).with_pcr8(release_key), "cfg");
    let unsigned = node_with(&ca, image(2), "cfg");
    let policy = |n: &Node| {
        AllowedImages::new()
            .allow(image(1).pcr0, image(1).pcr1, image(1).pcr2)
            .allow(image(2).pcr0, image(2).pcr1, image(2).pcr2)
            .require_pcr(8, release_key)
            .require_pcr(16, n.pcr16.clone())
    };
    let (chan, _) = handshake(&old.id, &policy(&old), &new.id, &policy(&new)).unwrap();
    assert_eq!(chan.peer().pcr(8), Some(&release_key[..]));
    let err = handshake(&old.id, &policy(&old), &unsigned.id, &policy(&unsigned)).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(AdmitError::PcrMismatch { index: 8, .. })), "{err}");
    let third = node_with(&ca, image(3).with_pcr8(release_key), "cfg");
    let err = handshake(&third.id, &third.admit, &old.id, &policy(&old)).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(AdmitError::PcrMismatch { index: 0, .. })), "{err}");
    let err = handshake(&old.id, &policy(&old), &third.id, &third.admit).unwrap_err();
    assert!(matches!(err, HandshakeError::Refused(AdmitError::ImageNotAllowed { .. })), "{err}");
}

#[test]
fn local_arguments_are_checked() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    assert!(matches!(Initiator::start(&a.id, b""), Err(HandshakeError::InvalidArgument(_))));
    assert!(matches!(Initiator::start(&a.id, &[0; 257]), Err(HandshakeError::InvalidArgument(_))));
    let too_long = "x".repeat(513);
    let err = bridle_channel::NodeIdentity::generate(a.nsm.clone(), too_long, root(&ca)).unwrap_err();
    assert!(matches!(err, HandshakeError::InvalidArgument(_)), "{err}");
    assert!(a.id.clone().with_max_message_len(u64::MAX).is_err());
}

/// A review of 2026-12-06: peers' documents were dated against the system clock, which in
/// an enclave is the hypervisor's and drifts; a node reads its own clock (corrected by its
/// NSM's) through `with_clock`. Ten minutes off that clock, a fresh document is too old.
#[test]
fn peers_documents_are_dated_by_the_nodes_own_clock() {
    let ca = MockCa::generate().unwrap();
    let (a, b) = (node(&ca), node(&ca));
    let system_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let on_time = a.id.clone().with_clock(Arc::new(system_ms));
    handshake(&on_time, &a.admit, &b.id, &b.admit).expect("the node's clock agrees with the documents");
    let ahead = a.id.clone().with_clock(Arc::new(move || system_ms() + 600_000));
    match handshake(&ahead, &a.admit, &b.id, &b.admit) {
        Err(HandshakeError::Attestation { error, .. }) => {
            assert!(error.to_string().contains("old") || error.to_string().contains("age"), "{error}")
        }
        Err(e) => panic!("refused otherwise: {e}"),
        Ok(_) => panic!("a document ten minutes before the node's clock was taken as fresh"),
    }
}
