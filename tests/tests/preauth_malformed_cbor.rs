//! Review of 2026-12-07 (pre-authentication surface), against the real `bridle-enclave`:
//! malformed CBOR a host or a stranger can send before anything is authenticated — tags
//! wrapped around every item, definite lengths turned indefinite, duplicate map keys,
//! random byte flips, truncations, interleaved half-frames on many connections — must be
//! answered (never a dead or hung enclave) and must not grow its memory past its plan. The
//! enclave's identity (its audit head's key) must be the same afterwards: no restart, no key
//! lost.

use alloy_primitives::{address, Address, U256};
use bridle_common::protocol::*;
use bridle_common::stamp::Stamp;
use bridle_tests::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

const CHAIN: u64 = 31337;
const USDC: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
const DEAD: Address = address!("000000000000000000000000000000000000dEaD");

fn frame(call: Call) -> Vec<u8> {
    bridle_common::frame::to_cbor(&RequestFrame { version: PROTOCOL_VERSION, call }).unwrap()
}

fn seeds() -> Vec<Vec<u8>> {
    let stamp = Stamp { nonce: [7; 16], timestamp: now(), mac: [0x5a; 32] };
    let tx = erc20_transfer(CHAIN, 0, USDC, DEAD, U256::from(1));
    vec![
        frame(Call::SignIfAllowed(SignRequest { session: DEAD, payload: SignPayload::Transaction(tx), stamp })),
        frame(Call::SignIfAllowed(SignRequest {
            session: DEAD,
            payload: SignPayload::TypedData(
                r#"{"types":{"EIP712Domain":[]},"primaryType":"EIP712Domain","domain":{},"message":{}}"#.into(),
            ),
            stamp,
        })),
        frame(Call::Audit(AuditQuery { since: 0, nonce: None })),
    ]
}

/// Walk one CBOR item at `pos`, re-emitting it into `out` with `f` applied to each header.
/// Mutations: 0 = wrap every item in a tag; 1 = turn definite arrays/maps indefinite;
/// 2 = repeat the first entry of every map (duplicate keys).
fn rewrite(b: &[u8], pos: &mut usize, out: &mut Vec<u8>, how: u8) -> Option<()> {
    let ib = *b.get(*pos)?;
    *pos += 1;
    let (major, info) = (ib >> 5, ib & 0x1f);
    let arg = match info {
        0..=23 => info as u64,
        24..=27 => {
            let n = 1usize << (info - 24);
            let v = b.get(*pos..*pos + n)?.iter().fold(0u64, |a, x| (a << 8) | *x as u64);
            *pos += n;
            v
        }
        _ => return None,
    };
    let hdr_end = *pos;
    let start = {
        // The original header's bytes.
        let n = match info {
            0..=23 => 1,
            24..=27 => 1 + (1usize << (info - 24)),
            _ => 1,
        };
        hdr_end - n
    };
    if how == 0 {
        out.extend_from_slice(&[0xd8, 0x2a]); // tag 42
    }
    match major {
        0 | 1 | 7 => out.extend_from_slice(&b[start..hdr_end]),
        2 | 3 => {
            out.extend_from_slice(&b[start..hdr_end]);
            out.extend_from_slice(b.get(*pos..*pos + arg as usize)?);
            *pos += arg as usize;
        }
        4 | 5 => {
            let items = if major == 5 { arg * 2 } else { arg };
            if how == 1 {
                out.push((major << 5) | 31);
            } else if how == 2 && major == 5 && arg > 0 {
                // One more entry: the first one again (duplicate key).
                let mut h = Vec::new();
                h.push((5 << 5) | 25);
                h.extend_from_slice(&((arg + 1) as u16).to_be_bytes());
                out.extend_from_slice(&h);
            } else {
                out.extend_from_slice(&b[start..hdr_end]);
            }
            let mut first = Vec::new();
            for i in 0..items {
                let before = out.len();
                rewrite(b, pos, out, how)?;
                if how == 2 && major == 5 && i < 2 {
                    first.extend_from_slice(&out[before..]);
                }
            }
            if how == 2 && major == 5 && arg > 0 {
                out.extend_from_slice(&first);
            }
            if how == 1 {
                out.push(0xff);
            }
        }
        6 => {
            out.extend_from_slice(&b[start..hdr_end]);
            rewrite(b, pos, out, how)?;
        }
        _ => return None,
    }
    Some(())
}

fn mutated(seed: &[u8], how: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    rewrite(seed, &mut pos, &mut out, how).expect("a seed we encoded");
    out
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Send frames on one connection, pipelined in batches, reading every answer.
fn send_all(socket: &std::path::Path, frames: &[Vec<u8>]) -> usize {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut answered = 0;
    for batch in frames.chunks(16) {
        let mut buf = Vec::new();
        for f in batch {
            buf.extend_from_slice(&(f.len() as u32).to_be_bytes());
            buf.extend_from_slice(f);
        }
        s.write_all(&buf).expect("send");
        for _ in batch {
            let mut h = [0u8; 4];
            s.read_exact(&mut h).expect("an answer (the enclave must answer, not die)");
            let mut body = vec![0u8; u32::from_be_bytes(h) as usize];
            s.read_exact(&mut body).expect("an answer body");
            let _: ResponseFrame = bridle_common::frame::from_cbor(&body).expect("a response frame");
            answered += 1;
        }
    }
    answered
}

fn identity(e: &EnclaveProc) -> String {
    match e.call(Call::Audit(AuditQuery { since: 0, nonce: None })) {
        Ok(Reply::Audit(r)) => format!("{:?}", r.head.enclave),
        other => panic!("audit: {other:?}"),
    }
}

#[test]
fn malformed_cbor_before_authentication_is_answered_and_holds_no_memory() {
    let e = EnclaveProc::start();
    let id = identity(&e);
    let base_rss = e.rss_kib();
    let mut frames = Vec::new();
    for seed in seeds() {
        for how in 0..3 {
            frames.push(mutated(&seed, how));
        }
    }
    // Each structural mutation must still be answered (decoded or refused, never a crash).
    let structural = frames.clone();
    assert_eq!(send_all(&e.socket, &structural), structural.len());
    // Random flips, truncations and extensions of the seeds and their mutations.
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut random = Vec::new();
    for i in 0..4000 {
        let mut f = structural[i % structural.len()].clone();
        match rng.next() % 4 {
            0 => {
                for _ in 0..(1 + rng.next() % 4) {
                    let p = (rng.next() as usize) % f.len();
                    f[p] = rng.next() as u8;
                }
            }
            1 => {
                let p = (rng.next() as usize) % f.len();
                f.truncate(p.max(1));
            }
            2 => {
                let p = (rng.next() as usize) % f.len();
                let v = [0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xbf, 0x5f, 0x7f, 0xc6, 0xd9, 0xff];
                let ins = v[(rng.next() as usize) % v.len()];
                f.insert(p, ins);
            }
            _ => {
                let p = (rng.next() as usize) % f.len();
                f[p] ^= 1 << (rng.next() % 8);
            }
        }
        random.push(f);
    }
    // Eight connections at once, their frames interleaved by the scheduler.
    let chunks: Vec<Vec<Vec<u8>>> = random.chunks(500).map(|c| c.to_vec()).collect();
    let socket = e.socket.clone();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|c| {
            let socket = socket.clone();
            std::thread::spawn(move || send_all(&socket, &c))
        })
        .collect();
    let answered: usize = handles.into_iter().map(|h| h.join().expect("a sender")).sum();
    assert_eq!(answered, random.len());
    // Half-frames left open on many connections, then a call on a fresh one is answered.
    let mut open = Vec::new();
    for i in 0..16 {
        let mut s = UnixStream::connect(&e.socket).expect("connect");
        let f = &structural[i % structural.len()];
        let mut buf = (f.len() as u32 + 1000).to_be_bytes().to_vec();
        buf.extend_from_slice(&f[..f.len() / 2]);
        s.write_all(&buf).unwrap();
        open.push(s);
    }
    assert_eq!(identity(&e), id, "the enclave's identity is unchanged: no restart, no key lost");
    drop(open);
    let peak = e.peak_rss_kib();
    eprintln!("rss before {base_rss} KiB, peak {peak} KiB");
    assert!(peak < base_rss + 96 * 1024, "the enclave grew by {} KiB on malformed frames", peak - base_rss);
}
