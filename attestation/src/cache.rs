//! A cache of verified CA certificates ([`CertCache`]), so that documents whose
//! chain prefix (root → regional → zonal → instance) was already verified cost only
//! the checks that differ per document.
//!
//! What is remembered is one fact per entry: "the certificate whose DER has SHA-256
//! `cert` carries a valid signature by the key of the certificate whose DER has
//! SHA-256 `issuer`", learnt during a verification that succeeded. The key is the pair,
//! so a certificate verified under root A is not trusted under root B. With the entry
//! comes the parsed certificate (to skip parsing it again) and the intersection of the
//! validity periods of the certificate and of every certificate above it up to the
//! trusted root, as they were when the entry was made: an entry is used only for a
//! verification time inside that window.
//!
//! Only the signature check of a cached link is skipped. Names, basic constraints,
//! path lengths, key usage and every certificate's validity at the verification time
//! are checked each time exactly as without the cache, and the leaf certificate and
//! the COSE signature are never cached: a verification with the cache returns exactly
//! what it returns without it.
//!
//! The cache is bounded (least recently used entries are evicted) and thread-safe.
//! [`crate::verify()`] uses a process-wide one ([`CertCache::global`]);
//! [`crate::verify_with_cache`] takes one of the caller's and [`crate::verify_uncached`]
//! none.

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
    /// (certificate hash, issuer hash) → verified link.
    links: HashMap<(CertHash, CertHash), Entry>,
    /// Parsed trusted roots, by hash (parsing only; a root is trusted by configuration).
    roots: HashMap<CertHash, Root>,
    clock: u64,
    hits: u64,
    misses: u64,
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
    /// Verified links held now.
    pub entries: usize,
    /// Lookups answered by an entry (its signature check skipped).
    pub hits: u64,
    /// Lookups not answered: no entry, or the verification time outside its window.
    pub misses: u64,
    /// Entries dropped to stay within the capacity.
    pub evictions: u64,
}

/// A bounded, thread-safe cache of verified CA certificate links. See the
/// [module documentation](self).
#[derive(Debug)]
pub struct CertCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Default for CertCache {
    fn default() -> Self {
        CertCache::new(CertCache::DEFAULT_CAPACITY)
    }
}

impl CertCache {
    /// Capacity of [`CertCache::default`] and of the process-wide cache: a Nitro chain
    /// has three cacheable links, so this holds the chains of many instances.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An empty cache holding at most `capacity` links (0: caches nothing).
    pub fn new(capacity: usize) -> Self {
        CertCache { inner: Mutex::new(Inner::default()), capacity }
    }

    /// The process-wide cache used by [`crate::verify()`].
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
            hits: inner.hits,
            misses: inner.misses,
            evictions: inner.evictions,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Entries are inserted whole: a panic elsewhere while the lock was held
        // cannot leave a half-made one.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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

    /// For each `(certificate hash, issuer hash)`, the parsed certificate if that link
    /// was verified before and `at` is inside the entry's window; `None` otherwise.
    pub(crate) fn lookup(&self, keys: &[(CertHash, CertHash)], at: u64) -> Vec<Option<Arc<ParsedCert>>> {
        if self.capacity == 0 {
            return vec![None; keys.len()];
        }
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let now = inner.tick();
            let found = match inner.links.get_mut(key) {
                Some(e) if e.window.contains(at) => {
                    e.last_used = now;
                    Some(Arc::clone(&e.cert))
                }
                _ => None,
            };
            match found {
                Some(_) => inner.hits += 1,
                None => inner.misses += 1,
            }
            out.push(found);
        }
        out
    }

    /// Remembers verified links: `(certificate hash, issuer hash, parsed certificate,
    /// window)`. Called only after the whole chain verified.
    pub(crate) fn insert(&self, links: Vec<(CertHash, CertHash, Arc<ParsedCert>, Window)>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        for (cert_hash, issuer_hash, cert, window) in links {
            let now = inner.tick();
            let key = (cert_hash, issuer_hash);
            if !inner.links.contains_key(&key) && inner.links.len() >= self.capacity {
                if let Some(oldest) = inner.links.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| *k) {
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
