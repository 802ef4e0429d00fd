//! Exposure across sessions (RULES.md §6a): the enclave's [`Book`] of every session's
//! holdings and declared ceilings, and each decision's access to it.
//!
//! A decision that may raise its session's exposure locks the book when it asks
//! ([`Gate::check`]) and keeps it locked until the session's new holdings are published
//! ([`Gate::publish`]), so check-and-publish is one step across sessions: two sessions'
//! requests that together would pass a ceiling are decided one after the other. A call that
//! changes the book logs its records under the book's lock too ([`Gate::prepare`]), so the
//! audit log's order is the book's. Lock order: a session's lock, then the book, then the
//! audit log (never the reverse). Every call that changes a session
//! publishes its holdings at the session time of that call, so the book is the same on
//! every replica of a cluster and can be rebuilt from a snapshot.

use super::Enclave;
use crate::session::{Inner, Session};
use alloy_primitives::{Address, B256};
use bridle_common::allowance::aggregate::{Aggregate, Book, Holdings, Raise};
use bridle_common::error::Denial;
use bridle_common::policy::CompiledPolicy;
use std::sync::{Arc, Mutex, MutexGuard};

/// One decision's access to the book.
pub(crate) struct Gate<'a> {
    book: &'a Mutex<Book>,
    guard: Option<MutexGuard<'a, Book>>,
    session: Address,
    owner: Address,
    agent: Address,
}

impl<'a> Gate<'a> {
    pub(crate) fn new(book: &'a Mutex<Book>, s: &Session) -> Gate<'a> {
        Gate { book, guard: None, session: s.address, owner: s.owner, agent: s.agent }
    }

    fn lock(&mut self) -> &mut Book {
        let book = self.book;
        self.guard.get_or_insert_with(|| book.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Publish the session's holdings and declared ceilings as they are after a call
    /// (without taking the lock when neither changed since the last publication).
    pub(crate) fn publish(&mut self, inner: &mut Inner) {
        if let Some(p) = self.prepare(inner) {
            self.commit(inner, p);
        }
    }

    /// What [`Gate::publish`] would write, if anything — with the book locked from here on,
    /// so that whatever is logged before [`Gate::commit`] takes its place in the log where
    /// the book changes (a review of 2026-12-06: a session's revocation was logged before
    /// the book let go of its ceiling, and another session's refusal by that ceiling after).
    pub(crate) fn prepare(&mut self, inner: &Inner) -> Option<Publication> {
        let holdings = inner.machine.holdings();
        let declares = inner.machine.declares();
        let now = (holdings, declares.as_ref().map(|p| p.hash));
        let unchanged = match &inner.published {
            Some(p) => *p == now,
            None => now.0.is_empty() && now.1.is_none(),
        };
        if unchanged {
            return None;
        }
        self.lock();
        Some(Publication { now, declares })
    }

    /// Write what [`Gate::prepare`] found.
    pub(crate) fn commit(&mut self, inner: &mut Inner, p: Publication) {
        let (session, owner, agent) = (self.session, self.owner, self.agent);
        let Publication { now, declares } = p;
        self.lock().publish(session, owner, agent, now.0.clone(), declares);
        inner.published = Some(now);
    }
}

/// A session's holdings and declared ceilings to publish ([`Gate::prepare`]).
pub(crate) struct Publication {
    now: (Holdings, Option<B256>),
    declares: Option<Arc<CompiledPolicy>>,
}

impl Aggregate for Gate<'_> {
    fn check(&mut self, raise: &Raise) -> Result<(), Denial> {
        let (session, owner, agent) = (self.session, self.owner, self.agent);
        self.lock().check(session, owner, agent, raise)
    }
}

impl Enclave {
    /// A gate to the book for a decision on `s`.
    pub(crate) fn gate<'a>(&'a self, s: &Session) -> Gate<'a> {
        Gate::new(&self.exposure, s)
    }

    /// Forget a session dropped from the enclave.
    pub(crate) fn unpublish(&self, session: &Address) {
        self.exposure.lock().unwrap_or_else(|e| e.into_inner()).remove(session);
    }

    /// The groups `s` belongs to, as they stand (for its status).
    pub(crate) fn groups(&self, s: &Session) -> Vec<bridle_common::allowance::aggregate::GroupView> {
        self.exposure.lock().unwrap_or_else(|e| e.into_inner()).view(s.owner, s.agent)
    }
}
