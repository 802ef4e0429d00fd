//! A frame's declared length is checked before anything is allocated: measured
//! with a counting allocator (this test binary's global allocator).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use bridle_channel::{ChannelError, DEFAULT_MAX_MESSAGE_LEN, FRAME_HEADER_LEN};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards every call to the system allocator unchanged; only records sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACKING.with(Cell::get) {
            LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation `f` makes on this thread.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.store(0, Ordering::Relaxed);
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    (out, LARGEST.load(Ordering::Relaxed))
}

#[test]
fn declared_lengths_are_checked_before_allocation() {
    let (mut a, mut b) = common::pair();
    let frame = a.seal(b"hello").unwrap();
    let header = |len: u64| {
        let mut h = frame[..FRAME_HEADER_LEN].to_vec();
        h[9..17].copy_from_slice(&len.to_be_bytes());
        h
    };

    // Over the maximum: refused from the header.
    let (r, largest) = largest_allocation(|| b.open(&header(u64::MAX)));
    assert_eq!(r, Err(ChannelError::MessageTooLarge { declared: u64::MAX, max: DEFAULT_MAX_MESSAGE_LEN }));
    assert!(largest < 1024, "allocated {largest} bytes");

    // Within the maximum but not backed by a body of that size: refused by size.
    let (r, largest) = largest_allocation(|| b.open(&header(DEFAULT_MAX_MESSAGE_LEN)));
    assert!(matches!(r, Err(ChannelError::LengthMismatch { .. })), "{r:?}");
    assert!(largest < 1024, "allocated {largest} bytes");

    let (r, largest) = largest_allocation(|| b.frame_len(&header(DEFAULT_MAX_MESSAGE_LEN + 1)));
    assert!(matches!(r, Err(ChannelError::MessageTooLarge { .. })));
    assert!(largest < 1024, "allocated {largest} bytes");

    // The measurement works: a genuine frame allocates its chunk buffer.
    let (r, largest) = largest_allocation(|| b.open(&frame));
    assert_eq!(r.unwrap(), b"hello");
    assert!(largest >= 65_535, "allocated {largest} bytes");
}
