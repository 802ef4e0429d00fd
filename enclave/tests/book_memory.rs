//! What the exposure book and a session's last publication take in memory, measured by a
//! counting allocator against what the budget charges for them (`service::charge`:
//! `BOOK_ENTRY_BYTES` per session in the book, `HOLDINGS_NODES_BYTES` once it holds a
//! token, `HOLDING_BYTES` per token held). Any key can
//! be an owner, so the worst case is the one measured: every session from a fresh owner and
//! agent key, each in groups of its own (a review of 2026-12-05 found the first charge, 512
//! bytes per token and nothing per session, a fraction of it).
//!
//! One test in its own binary: the allocator's counters are process-wide.

use alloy_primitives::{Address, U256};
use bridle_common::allowance::aggregate::{Book, Holdings};
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::CompiledPolicy;
use bridle_enclave::service::{BOOK_ENTRY_BYTES, HOLDINGS_NODES_BYTES, HOLDING_BYTES};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
/// Allocations live.
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same layout; the
// counter is a plain atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        NOW.fetch_add(l.size(), Relaxed);
        LIVE.fetch_add(1, Relaxed);
        // SAFETY: the caller's layout, unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Relaxed);
        LIVE.fetch_sub(1, Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// The most the enclave's allocator takes for `bytes` asked in `count` allocations
/// (`memory::allocated` for each: mimalloc's secure mode pads 8 bytes, rounds up to a size
/// class at most a quarter larger, and 16 more).
fn allocated((bytes, count): (usize, usize)) -> usize {
    (bytes + 8 * count) * 5 / 4 + 16 * count
}

fn addr(i: u64, tag: u8) -> Address {
    let mut b = [tag; 20];
    b[..8].copy_from_slice(&i.to_be_bytes());
    Address::from(b)
}

/// `tokens` tokens held on chain 1.
fn holdings(tokens: u64) -> Holdings {
    (0..tokens).map(|t| ((1u64, addr(t, 0x70)), U256::from(1_000_000u64))).collect()
}

/// Bytes per session for `sessions` sessions of fresh owners and agents, each holding
/// `tokens` tokens (and declaring `declares`): the book's and each session's publication.
fn per_session(sessions: u64, tokens: u64, declares: Option<&Arc<CompiledPolicy>>) -> (usize, usize) {
    let mut book = Book::new();
    let mut published: Vec<Holdings> = Vec::with_capacity(sessions as usize);
    let template = holdings(tokens);
    let (before, before_count) = (NOW.load(Relaxed), LIVE.load(Relaxed));
    for i in 0..sessions {
        let h = template.clone();
        published.push(h.clone());
        book.publish(addr(i, 0x5e), addr(i, 0x0a), addr(i, 0xa6), h, declares.cloned());
    }
    let grown = NOW.load(Relaxed) - before;
    let count = LIVE.load(Relaxed) - before_count;
    // The Vec's own buffer holds the publications' headers (the session keeps its
    // publication inline): not the book's.
    let headers = sessions as usize * std::mem::size_of::<Holdings>();
    assert_eq!(book.len() as u64, sessions);
    drop((book, published));
    // (The Vec's buffer is one allocation, counted in `count`; its bytes are taken out.)
    ((grown - headers) / sessions as usize, count.div_ceil(sessions as usize))
}

#[test]
fn the_charge_covers_what_the_book_holds_per_session_and_per_token() {
    let one = per_session(4_000, 1, None);
    let many = per_session(500, 65, None);
    let per_token = ((many.0 - one.0) / 64, (many.1 - one.1).div_ceil(64));
    let text = "name='c'\nchains=[1]\nvalid_for='1h'\nprices = { ETH = \"3000\" }\n\
                owner_exposure_ceiling = \"1000 USD\"\nagent_exposure_ceiling = \"1000 USD\"\n";
    let policy = Arc::new(CompiledPolicy::compile(resolve_text(text, 1_800_000_000).unwrap()).unwrap());
    let declaring = per_session(4_000, 1, Some(&policy));
    let declaring_only = per_session(4_000, 0, Some(&policy));
    eprintln!("book memory: {declaring_only:?} (bytes, allocations) per session declaring ceilings, holding nothing");
    eprintln!(
        "book memory: {one:?} per session holding one token, {declaring:?} declaring ceilings too, \
         {per_token:?} per further token (charged {BOOK_ENTRY_BYTES} per session, {HOLDINGS_NODES_BYTES} for the \
         first token's nodes, {HOLDING_BYTES} per token)"
    );
    let charged = |tokens: usize| match tokens {
        0 => BOOK_ENTRY_BYTES,
        n => BOOK_ENTRY_BYTES + HOLDINGS_NODES_BYTES + n * HOLDING_BYTES,
    };
    let heavier = if allocated(one) > allocated(declaring) { one } else { declaring };
    assert!(allocated(declaring_only) <= charged(0), "{declaring_only:?}");
    assert!(allocated(heavier) <= charged(1), "{heavier:?}");
    assert!(allocated(many) <= charged(65), "{many:?}");
    assert!(allocated(per_token) <= HOLDING_BYTES, "{per_token:?}");
    // Not wildly above either: the budget is what sessions may hold.
    assert!(charged(0) <= 2 * allocated(declaring_only), "{declaring_only:?}");
    assert!(charged(1) <= 2 * allocated(heavier), "{heavier:?}");
}
