//! The host's copy of the enclave's audit log, per entry (issue 12, items 1 and 4:
//! BENCHMARKS.md, "The audit copy per entry"). Measured side by side in one run, on
//! entries shaped like the load's (signatures over 64 sessions):
//! - `entry/hash`: one entry's chain hash (keccak over its canonical bytes), per entry;
//! - `entry/json`: one entry's stored JSON text, per entry;
//! - `batch/verify_chain`: the chain check of a 1 000-entry batch against its signed head;
//! - `batch/accept_sqlite`: the whole accept of such a batch (tip read, chain check, rows
//!   written in one transaction) into a SQLite file, as the pull's storage thread runs it.
//!
//! The `batch/` times are per batch, their throughput in entries per second: divide by
//! 1 000 for the time per entry.

use alloy_primitives::{Address, B256};
use bridle_common::audit::testing::TestChain;
use bridle_common::audit::{verify_chain, AuditReply, Decision, Record};
use bridle_host::audit_store::AuditStore;
use bridle_host::store::{open, Database};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const BATCH: usize = 1_000;
const T0: u64 = 1_800_000_000;

/// A chain of `n` entries as the load writes them: one `started`, then signatures over 64
/// sessions, each with its own digest.
fn chain(n: usize) -> TestChain {
    let mut c = TestChain::new(7);
    c.push(T0, Record::new(Decision::Started, Address::ZERO, B256::ZERO, "started"));
    for i in 1..n {
        let session = Address::with_last_byte((i % 64) as u8 + 1);
        let digest = B256::from(alloy_primitives::keccak256((i as u64).to_be_bytes()));
        c.push(T0 + i as u64 / 5_000, Record::new(Decision::Allowed, session, digest, "transaction"));
    }
    c
}

fn reply(c: &TestChain, from: usize, to: usize) -> AuditReply {
    AuditReply { entries: c.entries[from..to].to_vec(), head: c.head_at(to as u64 - 1, T0 + 1), more: false }
}

fn entry(c: &mut Criterion) {
    let ch = chain(2);
    let e = &ch.entries[1];
    let mut g = c.benchmark_group("entry");
    g.bench_function("hash", |b| b.iter(|| black_box(e).hash()));
    g.bench_function("json", |b| b.iter(|| serde_json::to_string(black_box(e)).unwrap()));
    g.finish();
}

fn batch(c: &mut Criterion) {
    let ch = chain(2 * BATCH);
    let first = reply(&ch, 0, BATCH);
    let second = reply(&ch, BATCH, 2 * BATCH);
    let from = Some((BATCH as u64, ch.entries[BATCH - 1].hash()));
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("verify_chain", |b| {
        b.iter(|| verify_chain(black_box(&second.entries), &second.head, ch.enclave(), from).unwrap())
    });
    // A fresh database holding the first batch; the timed part stores the second, as a
    // pull stores each batch after the last.
    g.bench_function("accept_sqlite", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let db = Database::Sqlite(dir.path().join("host.sqlite"));
                let store = AuditStore::new(open(&db).unwrap().audit);
                store.accept(ch.enclave(), None, &first).unwrap();
                (dir, store)
            },
            |(dir, store)| {
                assert_eq!(store.accept(ch.enclave(), None, &second).unwrap(), (BATCH, None));
                (dir, store)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, entry, batch);
criterion_main!(benches);
