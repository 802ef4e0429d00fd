//! The enclave socket itself: frame limits, garbage, partial frames, fuzzed input.
//! Talks to the real `bridle-enclave` binary over its Unix socket.

use bridle_common::frame::{from_cbor, to_cbor};
use bridle_common::protocol::*;
use bridle_tests::EnclaveProc;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

fn connect(e: &EnclaveProc) -> UnixStream {
    let s = UnixStream::connect(&e.socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn send_raw(s: &mut UnixStream, body: &[u8]) {
    let mut buf = (body.len() as u32).to_be_bytes().to_vec();
    buf.extend_from_slice(body);
    s.write_all(&buf).unwrap();
}

fn read_response(s: &mut UnixStream) -> Option<ResponseFrame> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let len = u32::from_be_bytes(h) as usize;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    Some(from_cbor(&body).expect("enclave replies are valid frames"))
}

fn call(s: &mut UnixStream, c: Call) -> ResponseFrame {
    send_raw(s, &to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call: c }).unwrap());
    read_response(s).expect("reply")
}

fn status_ok(e: &EnclaveProc) {
    let mut s = connect(e);
    let r = call(&mut s, Call::Status(StatusQuery { session: None, nonce: None, held: None }));
    assert!(matches!(r.result, Ok(Reply::Status(_))), "{r:?}");
}

fn err_code(r: &ResponseFrame) -> &'static str {
    match &r.result {
        Err(d) => d.code.as_str(),
        Ok(_) => "ok",
    }
}

#[test]
fn oversized_frames_are_refused_without_allocating() {
    let e = EnclaveProc::start();
    let before = e.rss_kib();
    for _ in 0..20 {
        let mut s = connect(&e);
        // Claim a 4 GiB body and send none of it: the reply must come at once, from the
        // header alone.
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let r = read_response(&mut s).expect("too_large reply");
        assert_eq!(err_code(&r), "too_large");
        // The enclave then closes this connection (the stream cannot be resynchronised).
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);
    }
    // Just over the default limit (1 MiB): also refused.
    let mut s = connect(&e);
    s.write_all(&((1u32 << 20) + 1).to_be_bytes()).unwrap();
    assert_eq!(err_code(&read_response(&mut s).unwrap()), "too_large");
    let after = e.rss_kib();
    // 21 refused frames claiming >84 GiB in all left the enclave's memory essentially unchanged.
    assert!(after < before + 16 * 1024, "RSS grew from {before} KiB to {after} KiB");
    status_ok(&e);
}

#[test]
fn garbage_frames_get_malformed_and_the_enclave_keeps_serving() {
    let e = EnclaveProc::start();
    let mut s = connect(&e);
    for body in [&b""[..], b"\xff\xff\xff", b"hello", b"\xa1\x61x\x01", &[0x9f; 100]] {
        send_raw(&mut s, body);
        let r = read_response(&mut s).expect("reply on the same connection");
        assert_eq!(err_code(&r), "malformed", "{body:?}");
    }
    // Unknown fields in a known call are refused too (deny_unknown_fields).
    let mut v = ciborium::Value::Map(vec![
        (ciborium::Value::Text("version".into()), ciborium::Value::Integer(1.into())),
        (
            ciborium::Value::Text("call".into()),
            ciborium::Value::Map(vec![(
                ciborium::Value::Text("status".into()),
                ciborium::Value::Map(vec![
                    (ciborium::Value::Text("session".into()), ciborium::Value::Null),
                    (ciborium::Value::Text("extra".into()), ciborium::Value::Bool(true)),
                ]),
            )]),
        ),
    ]);
    let mut buf = Vec::new();
    ciborium::into_writer(&v, &mut buf).unwrap();
    send_raw(&mut s, &buf);
    assert_eq!(err_code(&read_response(&mut s).unwrap()), "malformed");
    // A future protocol version is refused with `unsupported`.
    if let ciborium::Value::Map(m) = &mut v {
        m[0].1 = ciborium::Value::Integer(99.into());
        m[1].1 = ciborium::Value::Map(vec![(
            ciborium::Value::Text("status".into()),
            ciborium::Value::Map(vec![(ciborium::Value::Text("session".into()), ciborium::Value::Null)]),
        )]);
    }
    let mut buf = Vec::new();
    ciborium::into_writer(&v, &mut buf).unwrap();
    send_raw(&mut s, &buf);
    assert_eq!(err_code(&read_response(&mut s).unwrap()), "unsupported");
    // And the same connection still serves real calls.
    let r = call(&mut s, Call::Status(StatusQuery { session: None, nonce: None, held: None }));
    assert!(matches!(r.result, Ok(Reply::Status(_))));
}

#[test]
fn partial_frames_and_abrupt_closes_do_not_hurt() {
    let e = EnclaveProc::start();
    for cut in [1usize, 3, 4, 6] {
        let mut s = connect(&e);
        let body = to_cbor(&RequestFrame {
            version: PROTOCOL_VERSION,
            call: Call::Status(StatusQuery { session: None, nonce: None, held: None }),
        })
        .unwrap();
        let mut buf = (body.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(&body);
        s.write_all(&buf[..cut]).unwrap();
        drop(s);
    }
    status_ok(&e);
}

#[test]
fn random_frames_never_crash_the_enclave() {
    use rand_core::{OsRng, RngCore};
    let mut e = EnclaveProc::start();
    let mut s = connect(&e);
    // A valid frame with random byte flips, and fully random bodies.
    let good = to_cbor(&RequestFrame {
        version: PROTOCOL_VERSION,
        call: Call::SignIfAllowed(SignRequest {
            session: alloy_primitives::Address::repeat_byte(1),
            payload: SignPayload::Transaction(bridle_tests::erc20_transfer(
                1,
                0,
                alloy_primitives::Address::repeat_byte(2),
                alloy_primitives::Address::repeat_byte(3),
                alloy_primitives::U256::from(5),
            )),
            stamp: bridle_common::stamp::Stamp { nonce: [0; 16], timestamp: 0, mac: [0; 32] },
        }),
    })
    .unwrap();
    for i in 0..600 {
        let body = if i % 2 == 0 {
            let mut b = good.clone();
            for _ in 0..1 + (OsRng.next_u32() % 4) {
                let at = OsRng.next_u32() as usize % b.len();
                b[at] ^= 1 << (OsRng.next_u32() % 8);
            }
            b
        } else {
            let mut b = vec![0u8; (OsRng.next_u32() % 300) as usize];
            OsRng.fill_bytes(&mut b);
            b
        };
        send_raw(&mut s, &body);
        let r = read_response(&mut s).expect("a reply to every frame");
        assert!(r.result.is_err(), "a mutated request must not be signed: {r:?}");
    }
    assert!(e.proc.is_running());
    status_ok(&e);
}

/// A host may send the next requests before the answers (a pipeline): the enclave answers
/// every frame, in order, whatever came in one write — good frames, garbage between them,
/// and a frame over the limit last, after which it closes.
#[test]
fn pipelined_frames_are_answered_in_order() {
    let e = EnclaveProc::start();
    let mut s = connect(&e);
    let status = |i: u8| {
        to_cbor(&RequestFrame {
            version: PROTOCOL_VERSION,
            call: Call::Status(StatusQuery {
                session: None,
                nonce: Some(alloy_primitives::B256::repeat_byte(i)),
                held: None,
            }),
        })
        .unwrap()
    };
    let mut burst = Vec::new();
    for body in [status(1), b"\xff\x00".to_vec(), status(2), status(3)] {
        burst.extend_from_slice(&(body.len() as u32).to_be_bytes());
        burst.extend_from_slice(&body);
    }
    burst.extend_from_slice(&u32::MAX.to_be_bytes());
    s.write_all(&burst).unwrap();
    let mut answers = Vec::new();
    while let Some(r) = read_response(&mut s) {
        answers.push(match r.result {
            Ok(Reply::Status(st)) => format!("status {}", st.receipt.map(|r| r.nonce.to_string()).unwrap_or_default()),
            Err(d) => d.code.as_str().to_string(),
            Ok(other) => panic!("unexpected {other:?}"),
        });
    }
    let n = |i: u8| format!("status {}", alloy_primitives::B256::repeat_byte(i));
    assert_eq!(answers, [n(1), "malformed".into(), n(2), n(3), "too_large".into()]);
    status_ok(&e);
}
