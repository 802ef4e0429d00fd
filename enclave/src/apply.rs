//! The replica's apply context: while a cluster node applies a committed log entry, every
//! clock reading is the entry's time and every signature is made only where it is needed.
//!
//! A cluster's enclaves each run the same decision core over the same sequence of entries
//! and must reach the same state. Two things would otherwise differ between them: the
//! clock (each machine's own) and signatures (only nodes holding a session's key can make
//! one). So, for the duration of one entry's application, on the applying thread:
//!
//! * [`ReplicaClock::now`](crate::clock::ReplicaClock) returns the time the leader put in
//!   the entry (the leader read it once, when it proposed the entry);
//! * a session signs for real only on the node that proposed the entry (it answers the
//!   client) or where the result is kept in the state (an approval's signature, collected
//!   later); every other node uses a placeholder signature, which changes no state: the
//!   decision, the charges and the audit entries never depend on the signature's bytes.
//!
//! Outside an entry (single-enclave mode, reads), there is no context and everything is as
//! without a cluster.

use std::cell::Cell;

/// What the applying thread knows about the entry it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyCtx {
    /// The entry's time (unix seconds), read by the leader that proposed it.
    pub clock: u64,
    /// Whether this node proposed the entry (and will answer the client with its result).
    pub proposer: bool,
}

thread_local! {
    static CTX: Cell<Option<ApplyCtx>> = const { Cell::new(None) };
}

/// The context of the entry being applied on this thread, if any.
pub fn current() -> Option<ApplyCtx> {
    CTX.with(|c| c.get())
}

/// Run `f` as the application of one entry.
pub fn with<T>(ctx: ApplyCtx, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<ApplyCtx>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CTX.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(CTX.with(|c| c.replace(Some(ctx))));
    f()
}

/// Whether this thread should make replies' extras (attestations, receipts, binding
/// signatures): always outside a cluster entry, and on the proposer within one.
pub fn answers() -> bool {
    current().is_none_or(|c| c.proposer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_is_scoped_and_restored() {
        assert_eq!(current(), None);
        assert!(answers());
        let a = ApplyCtx { clock: 5, proposer: false };
        with(a, || {
            assert_eq!(current(), Some(a));
            assert!(!answers());
            let b = ApplyCtx { clock: 6, proposer: true };
            with(b, || assert_eq!(current(), Some(b)));
            assert_eq!(current(), Some(a));
        });
        assert_eq!(current(), None);
        let r = std::panic::catch_unwind(|| with(a, || panic!("x")));
        assert!(r.is_err());
        assert_eq!(current(), None, "restored after a panic");
    }
}
