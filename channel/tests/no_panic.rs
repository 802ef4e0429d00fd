//! Fuzz-style properties: random and mutated bytes fed to every entry point that
//! reads peer input — `Responder::respond`, `InitiatorState::finish`,
//! `ResponderState::finish` (including random and mutated attestation documents
//! inside a well-formed Noise handshake) and `Channel::open` — return errors,
//! never panic, and refused frames change no channel state.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use bridle_attestation::{MockCa, NsmProvider};
use bridle_channel::{Channel, HandshakeError, Initiator, Responder};
use common::*;
use proptest::prelude::*;

struct Fixture {
    ca: MockCa,
    a: Node,
    b: Node,
    /// A genuine document of b (bound to some earlier handshake).
    b_doc: Vec<u8>,
    /// A genuine message 2 and message 3 (of other handshakes).
    msg2: Vec<u8>,
    msg3: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ca = MockCa::generate().unwrap();
        let (a, b) = (node(&ca), node(&ca));
        let b_doc = b.nsm.attestation(Some(b"cfg".to_vec()), Some(vec![1; 32]), Some(vec![2; 32])).unwrap();
        let (state_a, msg1) = Initiator::start(&a.id, CLUSTER).unwrap();
        let (_, msg2) = Responder::respond(&b.id, CLUSTER, &msg1).unwrap();
        let (_, _, msg3) = state_a.finish(&msg2, &a.admit).unwrap();
        Fixture { ca, a, b, b_doc, msg2, msg3 }
    })
}

/// A channel pair and genuine frames a → b, shared by the cases of one property.
struct Link {
    b: Channel,
    frames: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
}

fn link() -> &'static Mutex<Link> {
    static L: OnceLock<Mutex<Link>> = OnceLock::new();
    L.get_or_init(|| {
        let (mut a, b) = pair();
        let payloads: Vec<Vec<u8>> =
            [0usize, 5, 300, 65_502, 65_503, 140_000].iter().map(|n| (0..*n).map(|i| i as u8).collect()).collect();
        let frames = payloads.iter().map(|p| a.seal(p).unwrap()).collect();
        Mutex::new(Link { b, frames, payloads })
    })
}

/// Applies byte edits, then an optional cut or extension.
fn mutate(base: &[u8], edits: &[(usize, u8)], cut: Option<usize>, extend: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    if !out.is_empty() {
        for (pos, x) in edits {
            let i = pos % out.len();
            out[i] ^= x | 1;
        }
    }
    if let Some(c) = cut {
        out.truncate(c % (base.len() + 1));
    }
    out.extend_from_slice(extend);
    out
}

fn edits() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>, Vec<u8>)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        prop::option::weighted(0.3, any::<usize>()),
        prop::collection::vec(any::<u8>(), 0..3),
    )
}

fn with_type(kind: u8, mut rest: Vec<u8>, typed: bool) -> Vec<u8> {
    if typed {
        rest.insert(0, kind);
    }
    rest
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn respond_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..120), typed in any::<bool>()) {
        let f = fixture();
        let msg1 = with_type(0x01, bytes, typed);
        // A 33-byte message of type 1 is a valid message 1 (any 32 bytes are an X25519 key).
        if let Ok((_, msg2)) = Responder::respond(&f.b.id, CLUSTER, &msg1) {
            prop_assert_eq!(msg1.len(), 33);
            prop_assert!(msg2.len() > f.b_doc.len());
        }
    }

    #[test]
    fn initiator_finish_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..6000),
        typed in any::<bool>(),
        (e, cut, ext) in edits(),
    ) {
        let f = fixture();
        let (state, _) = Initiator::start(&f.a.id, CLUSTER).unwrap();
        prop_assert!(state.finish(&with_type(0x02, bytes, typed), &f.a.admit).is_err());
        let (state, _) = Initiator::start(&f.a.id, CLUSTER).unwrap();
        prop_assert!(state.finish(&mutate(&f.msg2, &e, cut, &ext), &f.a.admit).is_err());
    }

    #[test]
    fn responder_finish_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..6000),
        typed in any::<bool>(),
        (e, cut, ext) in edits(),
    ) {
        let f = fixture();
        let (_, msg1) = Initiator::start(&f.a.id, CLUSTER).unwrap();
        let (state, _) = Responder::respond(&f.b.id, CLUSTER, &msg1).unwrap();
        prop_assert!(state.finish(&with_type(0x03, bytes, typed), &f.b.admit).is_err());
        let (state, _) = Responder::respond(&f.b.id, CLUSTER, &msg1).unwrap();
        prop_assert!(state.finish(&mutate(&f.msg3, &e, cut, &ext), &f.b.admit).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A peer that holds the keys of a well-formed handshake sends a random or
    /// mutated attestation document: the verifier behind Noise refuses it.
    #[test]
    fn garbage_documents_inside_the_handshake_are_refused(
        random in prop::collection::vec(any::<u8>(), 0..3000),
        use_random in any::<bool>(),
        (e, cut, ext) in edits(),
    ) {
        let f = fixture();
        let doc = if use_random { random } else { mutate(&f.b_doc, &e, cut, &ext) };
        let liar = identity(fixed(f.b.nsm.clone(), doc.clone()), &f.ca, "cfg");
        let err = handshake(&f.a.id, &f.a.admit, &liar, &f.b.admit).unwrap_err();
        prop_assert!(matches!(err, HandshakeError::Attestation { .. }), "{}", err);
        let err = handshake(&liar, &f.a.admit, &f.b.id, &f.b.admit).unwrap_err();
        prop_assert!(matches!(err, HandshakeError::Attestation { .. }), "{}", err);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn open_never_panics_and_refusals_change_nothing(
        random in prop::collection::vec(any::<u8>(), 0..200),
        header in (any::<u64>(), prop_oneof![any::<u64>(), 0u64..200]),
        which in 0usize..6,
        (e, cut, ext) in edits(),
    ) {
        let mut link = link().lock().unwrap();
        let Link { b, frames, .. } = &mut *link;
        let before = (b.highest_received(), b.messages_sent());
        prop_assert!(b.open(&random).is_err());
        let mut crafted = vec![0x04];
        crafted.extend_from_slice(&header.0.to_be_bytes());
        crafted.extend_from_slice(&header.1.to_be_bytes());
        crafted.extend_from_slice(&random);
        prop_assert!(b.open(&crafted).is_err());
        let _ = b.frame_len(&crafted);
        let mutated = mutate(&frames[which], &e, cut, &ext);
        if mutated != frames[which] {
            prop_assert!(b.open(&mutated).is_err());
        }
        prop_assert_eq!((b.highest_received(), b.messages_sent()), before);
    }
}

#[test]
fn after_the_fuzzing_the_genuine_frames_still_open_once() {
    // Runs on its own link state if first, or after the property above: either way
    // every genuine frame is accepted exactly once.
    let mut link = link().lock().unwrap();
    let Link { b, frames, payloads } = &mut *link;
    for (frame, payload) in frames.iter().zip(payloads.iter()) {
        assert_eq!(&b.open(frame).unwrap(), payload);
        assert!(b.open(frame).is_err());
    }
}

#[test]
fn channels_and_identities_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Channel>();
    send_sync::<bridle_channel::NodeIdentity>();
    send_sync::<bridle_channel::InitiatorState>();
    send_sync::<bridle_channel::ResponderState>();
    let _: Arc<dyn NsmProvider> = fixture().b.nsm.clone();
}
