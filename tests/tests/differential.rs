//! The engine's decision core against the independent reference model (issue 9): random
//! policies and request sequences — amounts, chains, tokens, times around period and month
//! boundaries and moving back, reused and skipped nonces, permits (EIP-2612 and Permit2's
//! messages and `approve`), user operations, argument rules (calldata canonical or not),
//! legacy transactions, access lists around `approvals.revoke_gas`, EIP-7702 transactions,
//! approvals and denials of held requests, policy updates, revocations — and every verdict, the
//! exposure, the uses, every ledger line in every period and the holdings by chain and token
//! compared after every step. Never a signature the model refuses.
//!
//! `BRIDLE_DIFF_SEQUENCES` sets how many (CI: 100 000; `make check-long`: 1 000 000);
//! `BRIDLE_DIFF_SEED` the first seed.

use bridle_tests::differential::{run_arg_calls, run_sequence, run_tx_shapes, run_with, Rng};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `run(seed)` for every seed of `first..first + n`, spread over the machine's threads: the
/// sum of their statistics, or every failure's text.
fn across_threads<S>(first: u64, n: u64, run: fn(u64) -> Result<S, String>) -> Result<S, String>
where
    S: Default + std::ops::AddAssign + Send + 'static,
{
    let threads = std::thread::available_parallelism().map(|p| p.get() as u64).unwrap_or(2).max(1);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || -> Result<S, String> {
                let mut st = S::default();
                let mut seed = first + t;
                while seed < first + n {
                    st += run(seed)?;
                    seed += threads;
                }
                Ok(st)
            })
        })
        .collect();
    let mut total = S::default();
    let mut failures = Vec::new();
    for h in handles {
        match h.join().expect("no panic") {
            Ok(s) => total += s,
            Err(e) => failures.push(e),
        }
    }
    if failures.is_empty() {
        Ok(total)
    } else {
        Err(failures.join("\n\n"))
    }
}

#[test]
fn engine_and_model_agree_on_random_sequences() {
    let n = env("BRIDLE_DIFF_SEQUENCES", 100_000);
    let first = env("BRIDLE_DIFF_SEED", 1);
    let start = std::time::Instant::now();
    let total = across_threads(first, n, |seed| run_sequence(seed, 24)).unwrap_or_else(|e| panic!("{e}"));
    println!("{n} seeds in {:.1?}: {total:?}", start.elapsed());
    // The sequences must exercise every outcome.
    assert!(
        total.allowed > 0
            && total.denied > 0
            && total.pending > 0
            && total.reasked > 0
            && total.reasked_other > 0
            && total.replaced > 0
            && total.signed_over_ceiling > 0
            && total.restored > 0
            && total.denied_by_owner > 0
            && total.redeemed > 0
            && total.permit2_allowances > 0
            && total.permit2_transfers > 0
            && total.permit2_approves > 0
            && total.jit_signed > 0
            && total.jit_refused > 0
            && total.args_signed > 0
            && total.args_rejected > 0
            && total.legacy_signed > 0
            && total.access_lists_signed > 0
            && total.access_list_decides > 0
            && total.eip7702_refused > 0
            && total.codes.get("denied_by_owner").is_some_and(|&n| n > 0),
        "{total:?}"
    );
    // And the rules that guard money must bind, so that what they charge is compared (a
    // review of 2026-12-05: amounts of at most 2 500 base units reached few caps).
    for code in ["spend_cap", "unlimited_approval", "exposure_ceiling", "gas_cap", "value_cap"] {
        assert!(total.codes.get(code).is_some_and(|&n| n > 0), "no request refused {code}: {total:?}");
    }
}

/// Argument rules call by call (RULES §5 "Arguments"): a policy of random argument rules and
/// 30 calls of its functions, canonical or not, per seed; one seed for every 20 sequences.
#[test]
fn engine_and_model_agree_on_argument_rules() {
    let n = env("BRIDLE_DIFF_SEQUENCES", 100_000) / 20;
    let first = env("BRIDLE_DIFF_SEED", 1);
    let start = std::time::Instant::now();
    let total = across_threads(first, n, |seed| run_arg_calls(seed, 30)).unwrap_or_else(|e| panic!("{e}"));
    println!("{n} argument-rule seeds in {:.1?}: {total:?}", start.elapsed());
    assert!(total.signed > 0 && total.rejected > 0, "{total:?}");
}

/// Transactions of every shape where their shape decides (RULES §4: a legacy transaction's
/// gas price is both fees; §6: a gas limit less what the access list costs up front below
/// `approvals.revoke_gas` may run out of gas and write nothing; EIP-7702 is refused): a
/// policy and 12 approvals, revocations and transfers per seed, legacy or with access lists,
/// their gas limits at the boundary; one seed for every 40 sequences.
#[test]
fn engine_and_model_agree_on_transaction_shapes() {
    let n = env("BRIDLE_DIFF_SEQUENCES", 100_000) / 40;
    let first = env("BRIDLE_DIFF_SEED", 1);
    let start = std::time::Instant::now();
    let total = across_threads(first, n, |seed| run_tx_shapes(seed, 12)).unwrap_or_else(|e| panic!("{e}"));
    println!("{n} transaction-shape seeds in {:.1?}: {total:?}", start.elapsed());
    assert!(
        total.legacy_signed > 0
            && total.access_lists_signed > 0
            && total.access_list_decides > 0
            && total.eip7702_refused > 0
            && total.codes.get("gas_cap").is_some_and(|&n| n > 0),
        "{total:?}"
    );
}

/// Sequences that once disagreed, kept as regressions (the seed's whole sequence replayed).
#[test]
fn seeds_that_once_disagreed() {
    // 494148 (`make check-long`): an approval refused for suspension removed an expired
    // request from the model but not from the engine; a later approval then got `expired`
    // from one and `malformed` from the other. A refused owner call now changes nothing.
    // (Replayed with the generator of the time: no owner denials.)
    for seed in [494148] {
        if let Err(e) = run_with(Rng::new(seed), seed, 24, false) {
            panic!("{e}");
        }
    }
}

/// The model's lists of selectors a wildcard never covers are written from RULES §5 on their
/// own; they must be the engine's, signature for signature.
#[test]
fn the_model_and_the_engine_list_the_same_wildcard_exclusions() {
    assert_eq!(bridle_common::policy::calls::TOKEN_MOVING, bridle_model::abi::TOKEN_MOVING);
    assert_eq!(bridle_common::policy::calls::ACCOUNT_EXECUTING, bridle_model::abi::ACCOUNT_EXECUTING);
}
