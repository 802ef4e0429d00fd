//! The transport through a relay that drops, reorders, duplicates, cuts and alters
//! frames.

mod common;

use bridle_attestation::MockCa;
use bridle_channel::{ChannelError, NodeIdentity, DEFAULT_MAX_MESSAGE_LEN, FRAME_HEADER_LEN, WINDOW};
use common::*;

const CHUNK: usize = 65_519;
const FIRST: usize = CHUNK - FRAME_HEADER_LEN;

#[test]
fn reordered_frames_are_accepted_once_and_duplicates_refused() {
    let (mut a, mut b) = pair();
    let frames: Vec<Vec<u8>> = (0..20u8).map(|i| a.seal(&[i; 10]).unwrap()).collect();
    let order = [7, 3, 19, 0, 1, 18, 2, 5, 4, 6, 12, 11, 10, 9, 8, 17, 16, 15, 14, 13];
    for &i in &order {
        assert_eq!(b.open(&frames[i]).unwrap(), vec![i as u8; 10]);
        // Every earlier-delivered frame is now a duplicate, and refusing it changes nothing.
        assert_eq!(b.open(&frames[i]), Err(ChannelError::Duplicate { counter: i as u64 }));
    }
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(b.open(frame), Err(ChannelError::Duplicate { counter: i as u64 }));
    }
    assert_eq!(b.highest_received(), Some(19));
    // Dropped frames simply never arrive; later ones still do.
    a.seal(b"lost").unwrap();
    let after = a.seal(b"after the lost one").unwrap();
    assert_eq!(b.open(&after).unwrap(), b"after the lost one");
}

#[test]
fn frames_older_than_the_window_are_refused() {
    let (mut a, mut b) = pair();
    let first = a.seal(b"first").unwrap();
    let mut last = Vec::new();
    for _ in 0..WINDOW {
        last = a.seal(b"x").unwrap();
    }
    assert_eq!(b.open(&last).unwrap(), b"x");
    assert_eq!(b.open(&first), Err(ChannelError::TooOld { counter: 0, oldest_accepted: 1 }));
    assert_eq!(b.highest_received(), Some(WINDOW));
}

#[test]
fn large_messages_are_chunked_and_chunks_cannot_be_moved() {
    let (mut a, mut b) = pair();
    let msg: Vec<u8> = (0..FIRST + 3 * CHUNK).map(|i| (i % 251) as u8).collect();
    let frame = a.seal(&msg).unwrap();
    assert_eq!(frame.len(), 2 * FRAME_HEADER_LEN + msg.len() + 4 * 16);
    // Chunks 1 and 2 (same size) swapped.
    let c1 = FRAME_HEADER_LEN + FIRST + FRAME_HEADER_LEN + 16;
    let c2 = c1 + CHUNK + 16;
    let mut swapped = frame.clone();
    swapped[c1..c2].copy_from_slice(&frame[c2..c2 + CHUNK + 16]);
    swapped[c2..c2 + CHUNK + 16].copy_from_slice(&frame[c1..c2]);
    assert_eq!(b.open(&swapped), Err(ChannelError::Authentication { counter: 0, chunk: 1 }));
    // Cut after three chunks, length adjusted: chunk 0 still says the real length.
    let mut cut = frame[..c2 + CHUNK + 16].to_vec();
    cut[9..17].copy_from_slice(&((FIRST + 2 * CHUNK) as u64).to_be_bytes());
    assert_eq!(b.open(&cut), Err(ChannelError::Authentication { counter: 0, chunk: 0 }));
    // Cut without adjusting: the size does not match the declared length.
    assert!(matches!(b.open(&frame[..frame.len() - 1]), Err(ChannelError::LengthMismatch { .. })));
    // A chunk of another frame at the same position.
    let other = a.seal(&msg).unwrap();
    let mut spliced = frame.clone();
    spliced[c1..c2].copy_from_slice(&other[c1..c2]);
    assert_eq!(b.open(&spliced), Err(ChannelError::Authentication { counter: 0, chunk: 1 }));
    // None of that changed the window: the genuine frames are accepted.
    assert_eq!(b.open(&frame).unwrap(), msg);
    assert_eq!(b.open(&other).unwrap(), msg);
}

#[test]
fn altered_frames_fail_authentication_and_change_nothing() {
    let (mut a, mut b) = pair();
    let frame = a.seal(b"transfer 10 to x").unwrap();
    for pos in 0..frame.len() {
        let mut bad = frame.clone();
        bad[pos] ^= 0x20;
        let err = b.open(&bad).unwrap_err();
        match pos {
            0 => assert!(matches!(err, ChannelError::Malformed { .. }), "{pos}: {err}"),
            1..=8 => assert!(
                matches!(err, ChannelError::Authentication { .. } | ChannelError::CounterOutOfRange { .. }),
                "{pos}: {err}"
            ),
            9..=16 => assert!(
                matches!(err, ChannelError::MessageTooLarge { .. } | ChannelError::LengthMismatch { .. }),
                "{pos}: {err}"
            ),
            _ => assert_eq!(err, ChannelError::Authentication { counter: 0, chunk: 0 }, "{pos}"),
        }
    }
    // A frame moved to another counter (header rewritten) fails.
    let second = a.seal(b"second").unwrap();
    let mut moved = second.clone();
    moved[1..9].copy_from_slice(&7u64.to_be_bytes());
    assert!(matches!(b.open(&moved), Err(ChannelError::Authentication { counter: 7, .. })));
    assert_eq!(b.highest_received(), None);
    assert_eq!(b.open(&second).unwrap(), b"second");
    assert_eq!(b.open(&frame).unwrap(), b"transfer 10 to x");
    assert!(matches!(b.open(&[]), Err(ChannelError::Malformed { .. })));
    assert!(matches!(b.open(&frame[..FRAME_HEADER_LEN - 1]), Err(ChannelError::Malformed { .. })));
}

#[test]
fn oversize_messages_are_refused_on_both_sides() {
    let ca = MockCa::generate().unwrap();
    let a = node(&ca);
    let small = NodeIdentity::clone(&node(&ca).id).with_max_message_len(1024).unwrap();
    let b = node(&ca);
    let (mut to_small, mut at_small) = handshake(&a.id, &a.admit, &small, &b.admit).unwrap();
    assert_eq!(to_small.max_message_len(), DEFAULT_MAX_MESSAGE_LEN);
    assert_eq!(at_small.max_message_len(), 1024);
    // The receiver refuses from the header alone.
    let frame = to_small.seal(&[5; 1025]).unwrap();
    assert_eq!(at_small.open(&frame), Err(ChannelError::MessageTooLarge { declared: 1025, max: 1024 }));
    assert_eq!(
        at_small.frame_len(&frame[..FRAME_HEADER_LEN]),
        Err(ChannelError::MessageTooLarge { declared: 1025, max: 1024 })
    );
    let ok = to_small.seal(&[5; 1024]).unwrap();
    assert_eq!(at_small.frame_len(&ok[..FRAME_HEADER_LEN]), Ok(ok.len()));
    assert_eq!(at_small.open(&ok).unwrap(), vec![5; 1024]);
    // The sender refuses over its own maximum, without using a counter.
    assert_eq!(at_small.seal(&[0; 1025]), Err(ChannelError::MessageTooLarge { declared: 1025, max: 1024 }));
    assert_eq!(at_small.messages_sent(), 0);
    // A header declaring an absurd length, with no body.
    let mut header = ok[..FRAME_HEADER_LEN].to_vec();
    header[9..17].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(at_small.open(&header), Err(ChannelError::MessageTooLarge { declared: u64::MAX, max: 1024 }));
    assert!(at_small.set_max_message_len(u64::MAX).is_err());
    at_small.set_max_message_len(2048).unwrap();
    assert_eq!(at_small.open(&frame).unwrap(), vec![5; 1025]);
}

#[test]
fn the_default_maximum_is_64_mib() {
    let (mut a, mut b) = pair();
    let max = DEFAULT_MAX_MESSAGE_LEN as usize;
    let msg = vec![0xA5; max];
    let frame = a.seal(&msg).unwrap();
    assert_eq!(b.open(&frame).unwrap().len(), max);
    assert!(matches!(a.seal(&vec![0; max + 1]), Err(ChannelError::MessageTooLarge { .. })));
}
