//! The decode bound against what decoding really allocates: a counting allocator measures
//! this thread's peak of live bytes during each decode, and the bound's charge must cover
//! it — for shapes an attacker would choose (one CBOR byte per decoded `String`, empty
//! structs in a list, nested empty lists) and for the largest legitimate requests.

use alloy_primitives::{Address, Bytes, B256, U256};
use bridle_common::decode_bound::{within, Bounded};
use bridle_common::frame::{from_cbor, max_decoded, to_cbor, FrameError, DEFAULT_MAX_FRAME};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{AccessEntry, Eip1559Request, TxRequest};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counters are const-initialised
// thread-locals without destructors, so touching them never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let live = LIVE.get() + l.size() as isize;
        LIVE.set(live);
        PEAK.set(PEAK.get().max(live));
        // SAFETY: the caller's layout is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.set(LIVE.get() - l.size() as isize);
        // SAFETY: `p` was allocated by `System` with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as the worst case: both buffers live while the contents move.
        let live = LIVE.get() + new as isize;
        PEAK.set(PEAK.get().max(live));
        LIVE.set(live - l.size() as isize);
        // SAFETY: as `GlobalAlloc::realloc`'s caller promised.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Decode `bytes` as `T` the way `from_cbor` does; returns whether it decoded, what was
/// charged, and the peak of bytes allocated on this thread beyond those live before (the
/// scratch buffer included).
fn measure<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Measured {
    let before = LIVE.get();
    PEAK.set(before);
    let ((ok, charged), peak) = {
        // As `frame::from_cbor_within` does: a scratch buffer as long as the frame, and the
        // rest of the bound for the decoded value.
        let mut scratch = vec![0u8; bytes.len()];
        let (r, charged) = within(max_decoded(bytes.len()) - bytes.len(), || {
            ciborium::de::from_reader_with_buffer::<Bounded<T>, _>(bytes, &mut scratch).map(|b| b.0)
        });
        drop(scratch);
        let ok = r.is_ok();
        drop(r);
        ((ok, charged), PEAK.get() - before)
    };
    Measured { ok, charged: charged.bytes, ran_out: charged.ran_out, peak: peak as usize }
}

/// What [`measure`] found.
struct Measured {
    ok: bool,
    charged: usize,
    ran_out: bool,
    peak: usize,
}

type Measure = fn(&[u8]) -> Measured;

/// What ciborium itself holds beside the decoded value: an error's message.
const SLACK: usize = 4 << 10;

fn cbor_array(n: usize, item: &[u8]) -> Vec<u8> {
    let mut v = vec![0x9b];
    v.extend_from_slice(&(n as u64).to_be_bytes());
    for _ in 0..n {
        v.extend_from_slice(item);
    }
    v
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Wide {
    #[serde(default)]
    a: [u64; 16],
    #[serde(default)]
    b: Option<String>,
}

#[test]
fn an_attackers_shapes_are_refused_within_their_bound() {
    let n = DEFAULT_MAX_FRAME - 16;
    let shapes: Vec<(&str, Vec<u8>, Measure)> = vec![
        // One byte each: "" as a String (24 bytes), fifty times the frame unbounded.
        ("empty strings", cbor_array(n, &[0x60]), measure::<Vec<String>>),
        // {} as a 136-byte struct: a hundred times the frame and more.
        ("empty structs", cbor_array(n, &[0xa0]), measure::<Vec<Wide>>),
        ("empty lists", cbor_array(n, &[0x80]), measure::<Vec<Vec<u64>>>),
        ("zero integers", cbor_array(n, &[0x00]), measure::<Vec<u64>>),
    ];
    for (what, bytes, m) in shapes {
        let Measured { ok, charged, ran_out, peak } = m(&bytes);
        assert!(!ok && ran_out, "{what}: decoded within {} bytes", max_decoded(bytes.len()));
        assert!(charged <= max_decoded(bytes.len()));
        assert!(
            peak <= max_decoded(bytes.len()) + SLACK,
            "{what}: {peak} bytes allocated, the bound is {}",
            max_decoded(bytes.len())
        );
    }
    let bytes = cbor_array(n, &[0x60]);
    match from_cbor::<Vec<String>>(&bytes) {
        Err(e @ FrameError::DecodedTooLarge { .. }) => {
            assert_eq!(e.to_denial().code, bridle_common::error::ErrorCode::TooLarge);
            assert!(e.to_string().contains(&max_decoded(bytes.len()).to_string()), "{e}");
        }
        other => panic!("expected DecodedTooLarge, got {other:?}"),
    }
}

#[test]
fn the_charge_covers_what_a_decode_allocates() {
    let frames: Vec<(&str, Vec<u8>, Measure)> = vec![
        (
            "a message",
            to_cbor(&SignPayload::Message(Bytes::from(vec![7u8; 1_000_000]))).unwrap(),
            measure::<SignPayload>,
        ),
        (
            "a message just past a power of two",
            to_cbor(&SignPayload::Message(Bytes::from(vec![7u8; 524_289]))).unwrap(),
            measure::<SignPayload>,
        ),
        ("typed data", to_cbor(&SignPayload::TypedData("x".repeat(1_000_000))).unwrap(), measure::<SignPayload>),
        (
            "a transaction with an access list",
            to_cbor(&SignPayload::Transaction(big_access_list())).unwrap(),
            measure::<SignPayload>,
        ),
        ("an address list", to_cbor(&vec![Address::repeat_byte(9); 45_000]).unwrap(), measure::<Vec<Address>>),
        ("small integers", cbor_array(300_000, &[0x01]), measure::<Vec<u8>>),
        ("a few strings", to_cbor(&vec!["abc".to_string(); 1000]).unwrap(), measure::<Vec<String>>),
    ];
    for (what, bytes, m) in frames {
        assert!(bytes.len() <= DEFAULT_MAX_FRAME, "{what}: {} bytes", bytes.len());
        let Measured { ok, charged, ran_out, peak } = m(&bytes);
        assert!(ok && !ran_out, "{what} ({} bytes) is refused: charged {charged}", bytes.len());
        assert!(peak <= charged + bytes.len() + SLACK, "{what}: {peak} bytes allocated, {charged} charged");
    }
}

fn big_access_list() -> TxRequest {
    let entry = AccessEntry { address: Address::repeat_byte(1), storage_keys: vec![B256::repeat_byte(2); 100] };
    TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        gas_limit: 21_000,
        to: Some(Address::ZERO),
        value: U256::ZERO,
        data: Bytes::new(),
        access_list: vec![entry; 280],
    })
}

#[test]
fn cluster_traffic_is_told_without_decoding_the_call() {
    use bridle_common::cluster::ClusterCall;
    use bridle_common::protocol::{is_cluster_call, Attest, Call, RequestFrame, PROTOCOL_VERSION};
    let frame = |call| to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap();
    let deliver = frame(Call::Cluster(ClusterCall::Deliver { bytes: vec![3; 900_000] }));
    let attest = frame(Call::Attest(Attest { nonce: Some(Bytes::from(vec![4; 900_000])) }));
    assert!(is_cluster_call(&deliver).unwrap());
    assert!(!is_cluster_call(&attest).unwrap());
    // The call's content is skipped, never kept: nothing beyond the scratch buffer is
    // allocated for it.
    let before = LIVE.get();
    PEAK.set(before);
    assert!(!is_cluster_call(&attest).unwrap());
    let peak = (PEAK.get() - before) as usize;
    assert!(peak <= attest.len() + SLACK, "{peak} bytes allocated for a frame of {}", attest.len());
    // A name of a megabyte is compared where it was read, never copied.
    let mut long = vec![0xa2, 0x67];
    long.extend_from_slice(b"version");
    long.extend_from_slice(&[0x01, 0x64, b'c', b'a', b'l', b'l', 0xa1, 0x7a]);
    long.extend_from_slice(&(1u32 << 20).to_be_bytes());
    long.extend(std::iter::repeat_n(b'x', 1 << 20));
    long.push(0xf6);
    PEAK.set(LIVE.get());
    let before = LIVE.get();
    assert!(!is_cluster_call(&long).unwrap());
    assert!(((PEAK.get() - before) as usize) <= long.len() + SLACK);
    assert!(is_cluster_call(&[0xa1, 0x64, b'c', b'a', b'l', b'l', 0x01]).is_err(), "a call that is not a variant");
    assert!(is_cluster_call(&cbor_array(1000, &[0x60])).is_err());
}

/// The largest legitimate answers a host decodes: a thousand audit entries.
#[test]
fn an_audit_reply_of_a_thousand_entries_decodes() {
    use bridle_common::audit::{AuditEntry, Decision};
    let entries: Vec<AuditEntry> = (0..1000u64)
        .map(|seq| AuditEntry {
            seq,
            time: 1_764_000_000 + seq,
            session: Address::repeat_byte(5),
            kind: Decision::Allowed,
            code: None,
            rule: None,
            request_digest: B256::repeat_byte(6),
            detail: "message".into(),
            prev: B256::repeat_byte(7),
        })
        .collect();
    let bytes = to_cbor(&entries).unwrap();
    let Measured { ok, charged, peak, .. } = measure::<Vec<AuditEntry>>(&bytes);
    assert!(ok, "{} bytes, charged {charged}", bytes.len());
    assert!(peak <= charged + bytes.len() + SLACK);
}

/// serde quotes what it was given in its errors (an unknown field's name, a string where a
/// number belongs): a refusal's text stays short, and a long name is never copied whole.
#[test]
fn errors_quote_little_of_what_they_were_given() {
    use bridle_common::protocol::{is_cluster_call, RequestFrame};
    let text = |n: usize| {
        let mut v = vec![0x7a];
        v.extend_from_slice(&(n as u32).to_be_bytes());
        v.extend(std::iter::repeat_n(0x1f, n));
        v
    };
    // {<a megabyte of 0x1f>: null}: an unknown field of a request frame.
    let mut unknown = vec![0xa1];
    unknown.extend(text(1 << 20));
    unknown.push(0xf6);
    // {"version": <a megabyte of text>}: a string where a number belongs.
    let mut mistyped = vec![0xa1, 0x67];
    mistyped.extend_from_slice(b"version");
    mistyped.extend(text(1 << 20));
    for frame in [&unknown, &mistyped] {
        let before = LIVE.get();
        PEAK.set(before);
        let e = from_cbor::<RequestFrame>(frame).unwrap_err();
        let peak = (PEAK.get() - before) as usize;
        assert!(e.to_string().len() < 400, "{} bytes of error", e.to_string().len());
        // The scratch buffer, and serde's own copy of a mistyped value (the name is cut).
        assert!(peak <= 2 * frame.len() + SLACK, "{peak} bytes for a frame of {}", frame.len());
    }
    let before = LIVE.get();
    PEAK.set(before);
    assert!(from_cbor::<RequestFrame>(&unknown).is_err());
    assert!(((PEAK.get() - before) as usize) <= unknown.len() + SLACK, "an unknown name is not copied");
    // The cluster check reads frames as strictly as the full decode: an unknown key is refused.
    let mut extra = vec![0xa3, 0x67];
    extra.extend_from_slice(b"version");
    extra.push(0x01);
    extra.extend_from_slice(&[0x64, b'j', b'u', b'n', b'k', 0x00, 0x64, b'c', b'a', b'l', b'l', 0xa1, 0x67]);
    extra.extend_from_slice(b"cluster");
    extra.push(0xf6);
    assert!(is_cluster_call(&extra).is_err());
}
