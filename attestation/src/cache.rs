//! A cache of verified certificate links ([`CertCache`]), so that documents whose
//! chain (root → regional → zonal → instance → enclave leaf) was already verified cost
//! only the checks that differ per document.
//!
//! What is remembered is one fact per entry: "the certificate whose DER has SHA-256
//! `cert` carries a valid signature by the key of the certificate whose DER has
//! SHA-256 `issuer`", learnt during a verification that succeeded. The key is the pair
//! (and whether `cert` was the document's leaf or a CA certificate of its `cabundle`:
//! a leaf entry answers only for a leaf, a CA entry only for a CA), so a certificate
//! verified under issuer A is not trusted under issuer B — not even an enclave leaf
//! under another instance CA of the same name. With the entry comes the parsed
//! certificate (to skip parsing it again) and the intersection of the validity periods
//! of the certificate and of every certificate above it up to the trusted root, as
//! they were when the entry was made: an entry is used only for a verification time
//! inside that window.
//!
//! Two kinds of links are cached:
//!
//! - the CA links of the `cabundle` (regional by root, zonal by regional, instance by
//!   zonal), shared by every enclave of a zone;
//! - the enclave leaf certificate's link to its instance CA. Nitro reuses one leaf
//!   certificate for hours (about three), so successive documents from the same
//!   enclave then cost one P-384 check: the COSE signature, which is always verified
//!   (the payload — PCRs, nonce, user data, public key, timestamp — changes with every
//!   document). [`CertCache::with_leaf_links`] turns this kind off.
//!
//! Only the signature check of a cached link is skipped. Names, basic constraints
//! (CA for an issuer, not a CA for the leaf), path lengths, key usage, every
//! certificate's validity at the verification time and the leaf's curve are checked
//! each time exactly as without the cache, and the COSE signature is always verified
//! with the leaf's public key: a verification with the cache returns exactly what it
//! returns without it.
//!
//! Entries are added only by a verification that returned `Ok` — the whole document
//! verified, COSE signature, time rules and expected values included. A document that
//! fails any check adds nothing, not even the links it did verify.
//!
//! The cache is bounded and thread-safe. The least recently used entry is evicted, within
//! shares: a quarter of the capacity is kept for CA links, used by every document of their
//! zone, and a new leaf never evicts one of them while they hold no more than that (nor a
//! new CA link a leaf while leaves hold no more than the rest). [`crate::verify()`] uses a process-wide one ([`CertCache::global`]);
//! [`crate::verify_with_cache`] takes one of the caller's and
//! [`crate::verify_uncached`] none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::x509::ParsedCert;

/// SHA-256 of a certificate's DER.
pub(crate) type CertHash = [u8; 32];

/// A validity window, unix seconds, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub not_before: u64,
    pub not_after: u64,
}

impl Window {
    pub(crate) fn of(cert: &ParsedCert) -> Self {
        Window { not_before: cert.not_before, not_after: cert.not_after }
    }

    /// The intersection with `cert`'s validity.
    pub(crate) fn narrowed(self, cert: &ParsedCert) -> Self {
        Window { not_before: self.not_before.max(cert.not_before), not_after: self.not_after.min(cert.not_after) }
    }

    pub(crate) fn contains(self, at: u64) -> bool {
        self.not_before <= at && at <= self.not_after
    }
}

/// Which certificate of a chain a link is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LinkKind {
    /// A CA certificate of the `cabundle`, signed by the one above it (or the root).
    Ca,
    /// The document's leaf (enclave) certificate, signed by the last CA of the bundle.
    Leaf,
}

impl LinkKind {
    fn other(self) -> LinkKind {
        match self {
            LinkKind::Ca => LinkKind::Leaf,
            LinkKind::Leaf => LinkKind::Ca,
        }
    }
}

/// A link: "certificate `cert` is signed by the key of certificate `issuer`" (DER
/// hashes), for a certificate in the position `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct LinkKey {
    pub cert: CertHash,
    pub issuer: CertHash,
    pub kind: LinkKind,
}

/// A link verified by a verification that succeeded, to remember.
#[derive(Debug, Clone)]
pub(crate) struct NewLink {
    pub key: LinkKey,
    /// The parsed certificate `key.cert`.
    pub cert: Arc<ParsedCert>,
    /// Its validity intersected with that of every certificate above it.
    pub window: Window,
}

#[derive(Debug)]
struct Entry {
    cert: Arc<ParsedCert>,
    window: Window,
    last_used: u64,
}

#[derive(Debug)]
struct Root {
    cert: Arc<ParsedCert>,
    last_used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Verified links.
    links: HashMap<LinkKey, Entry>,
    /// Parsed trusted roots, by hash (parsing only; a root is trusted by configuration).
    roots: HashMap<CertHash, Root>,
    clock: u64,
    hits: u64,
    misses: u64,
    leaf_hits: u64,
    leaf_misses: u64,
    evictions: u64,
}

impl Inner {
    fn tick(&mut self) -> u64 {
        self.clock = self.clock.wrapping_add(1);
        self.clock
    }
}

/// Counters of a [`CertCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertCacheStats {
    /// Verified links held now (CA and leaf links).
    pub entries: usize,
    /// Of which leaf certificate links.
    pub leaf_entries: usize,
    /// Lookups answered by an entry (its signature check skipped), CA and leaf links.
    pub hits: u64,
    /// Lookups not answered: no entry, or the verification time outside its window.
    pub misses: u64,
    /// Of the hits, those for a leaf certificate.
    pub leaf_hits: u64,
    /// Of the misses, those for a leaf certificate.
    pub leaf_misses: u64,
    /// Entries dropped to stay within the capacity.
    pub evictions: u64,
}

/// A bounded, thread-safe cache of verified certificate links (CA certificates of
/// the bundle and, unless turned off, enclave leaf certificates). See the
/// [module documentation](self).
#[derive(Debug)]
pub struct CertCache {
    inner: Mutex<Inner>,
    capacity: usize,
    leaf_links: bool,
}

impl Default for CertCache {
    fn default() -> Self {
        CertCache::new(CertCache::DEFAULT_CAPACITY)
    }
}

impl CertCache {
    /// Capacity of [`CertCache::default`] and of the process-wide cache: a Nitro chain
    /// has three cacheable CA links and each enclave one leaf link, so this holds the
    /// chains of many zones and the leaves of many enclaves.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An empty cache holding at most `capacity` links (0: caches nothing), CA and
    /// leaf links alike.
    pub fn new(capacity: usize) -> Self {
        CertCache { inner: Mutex::new(Inner::default()), capacity, leaf_links: true }
    }

    /// The same cache, remembering leaf certificate links or not (`false`: only the CA
    /// links of the bundle are cached, and the leaf certificate's signature is
    /// checked every time; its lookups are then not counted).
    pub fn with_leaf_links(mut self, cache_leaf_links: bool) -> Self {
        self.leaf_links = cache_leaf_links;
        self
    }

    /// Whether leaf certificate links are cached (the default).
    pub fn caches_leaf_links(&self) -> bool {
        self.leaf_links
    }

    /// The process-wide cache used by [`crate::verify()`] (CA and leaf links).
    pub fn global() -> &'static CertCache {
        static GLOBAL: OnceLock<CertCache> = OnceLock::new();
        GLOBAL.get_or_init(CertCache::default)
    }

    /// Largest number of links held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of links held now.
    pub fn len(&self) -> usize {
        self.lock().links.len()
    }

    /// Whether no link is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every entry (counters are kept).
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.links.clear();
        inner.roots.clear();
    }

    /// Current counters.
    pub fn stats(&self) -> CertCacheStats {
        let inner = self.lock();
        CertCacheStats {
            entries: inner.links.len(),
            leaf_entries: inner.links.keys().filter(|k| k.kind == LinkKind::Leaf).count(),
            hits: inner.hits,
            misses: inner.misses,
            leaf_hits: inner.leaf_hits,
            leaf_misses: inner.leaf_misses,
            evictions: inner.evictions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Entries are inserted whole: a panic elsewhere while the lock was held
        // cannot leave a half-made one.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many links of `kind` the cache keeps whatever the other kind does: a quarter
    /// of the capacity for CA links (at least one), the rest for leaf links (or all of it
    /// when leaf links are not cached). A kind may hold more while the other has room, but
    /// a link coming in evicts one of its own kind once its kind holds its share — so new
    /// leaves (any enclave restarting, a stranger's handshake) never push out the CA links
    /// every document of a zone uses, nor the reverse (a review of 2026-12-06).
    fn share(&self, kind: LinkKind) -> usize {
        let ca = if self.leaf_links { (self.capacity / 4).max(1) } else { self.capacity };
        match kind {
            LinkKind::Ca => ca,
            LinkKind::Leaf => self.capacity.saturating_sub(ca),
        }
    }

    /// Whether links of this kind are cached at all.
    fn caches(&self, kind: LinkKind) -> bool {
        self.capacity > 0 && (kind == LinkKind::Ca || self.leaf_links)
    }

    /// The parsed trusted root whose DER has hash `hash`, if parsed before.
    pub(crate) fn root(&self, hash: &CertHash) -> Option<Arc<ParsedCert>> {
        if self.capacity == 0 {
            return None;
        }
        let mut inner = self.lock();
        let now = inner.tick();
        inner.roots.get_mut(hash).map(|r| {
            r.last_used = now;
            Arc::clone(&r.cert)
        })
    }

    /// Remembers a parsed trusted root.
    pub(crate) fn insert_root(&self, hash: CertHash, cert: Arc<ParsedCert>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        let now = inner.tick();
        if !inner.roots.contains_key(&hash) && inner.roots.len() >= self.capacity {
            if let Some(oldest) = inner.roots.iter().min_by_key(|(_, r)| r.last_used).map(|(k, _)| *k) {
                inner.roots.remove(&oldest);
            }
        }
        inner.roots.insert(hash, Root { cert, last_used: now });
    }

    /// For each link, the parsed certificate if that link was verified before and `at`
    /// is inside the entry's window; `None` otherwise (and, uncounted, for a kind this
    /// cache does not hold).
    pub(crate) fn lookup(&self, keys: &[LinkKey], at: u64) -> Vec<Option<Arc<ParsedCert>>> {
        if !keys.iter().any(|k| self.caches(k.kind)) {
            return vec![None; keys.len()];
        }
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if !self.caches(key.kind) {
                out.push(None);
                continue;
            }
            let now = inner.tick();
            let found = match inner.links.get_mut(key) {
                Some(e) if e.window.contains(at) => {
                    e.last_used = now;
                    Some(Arc::clone(&e.cert))
                }
                _ => None,
            };
            let leaf = key.kind == LinkKind::Leaf;
            match found {
                Some(_) => {
                    inner.hits += 1;
                    inner.leaf_hits += u64::from(leaf);
                }
                None => {
                    inner.misses += 1;
                    inner.leaf_misses += u64::from(leaf);
                }
            }
            out.push(found);
        }
        out
    }

    /// Remembers verified links. Called only once the whole document verified (see
    /// `verify_inner`): a document that fails any check adds nothing.
    pub(crate) fn insert(&self, links: Vec<NewLink>) {
        if !links.iter().any(|l| self.caches(l.key.kind)) {
            return;
        }
        let mut inner = self.lock();
        for NewLink { key, cert, window } in links {
            if !self.caches(key.kind) {
                continue;
            }
            let now = inner.tick();
            if !inner.links.contains_key(&key) && inner.links.len() >= self.capacity {
                // The least recently used link of the kind coming in, while that kind holds
                // its share; else of the other kind (which then holds more than its own).
                let of_kind = inner.links.keys().filter(|k| k.kind == key.kind).count();
                let victims = if of_kind >= self.share(key.kind) { key.kind } else { key.kind.other() };
                let oldest_of = |kind: Option<LinkKind>| {
                    inner
                        .links
                        .iter()
                        .filter(|(k, _)| kind.is_none_or(|kind| k.kind == kind))
                        .min_by_key(|(_, e)| e.last_used)
                        .map(|(k, _)| *k)
                };
                // (A kind whose share is zero: a cache of one link.)
                let oldest = oldest_of(Some(victims)).or_else(|| oldest_of(None));
                if let Some(oldest) = oldest {
                    inner.links.remove(&oldest);
                    inner.evictions += 1;
                }
            }
            inner.links.insert(key, Entry { cert, window, last_used: now });
        }
    }
}

#[cfg(test)]
mod tests;
