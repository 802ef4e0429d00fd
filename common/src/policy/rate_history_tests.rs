//! The rate-limit history survives policy updates (RULES §7); what it no longer holds is
//! counted as full, never as empty (RULES §1, `rate_limited`).

use super::*;
use crate::allowance::Place;
use crate::error::ErrorCode;
use crate::period::parse_time;
use crate::tx::Call;
use alloy_primitives::{address, Address, Bytes, U256};

const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");

fn t0() -> u64 {
    parse_time("2026-11-23T10:00:00Z").unwrap()
}

fn policy(extra: &str) -> CompiledPolicy {
    let text = format!(
        "name = \"rates\"\nchains = [1]\nvalid_for = \"30 days\"\nmax_value_per_call = \"1 ETH\"\n[[limits]]\nmax = \"1 ETH\"\nper = \"session\"\n[[calls]]\ntarget = \"{ALICE}\"\nfunctions = [\"receive()\"]\n{extra}"
    );
    CompiledPolicy::compile(file::resolve_text(&text, t0()).unwrap()).unwrap_or_else(|d| panic!("{d}"))
}

fn ask(p: &CompiledPolicy, c: &Counters, now: u64) -> Result<Charges, crate::Denial> {
    let calls = [Call { to: Some(ALICE), value: U256::from(1), data: Bytes::new() }];
    let op = Operation {
        chain_id: 1,
        calls: &calls,
        gas: None,
        place: Place::Own { chain_id: 1, nonce: 0 },
        holder: ACCOUNT,
    };
    evaluate(p, c, &Context { now, anchor: t0(), owner: Address::ZERO, account: ACCOUNT }, &op)
}

/// A review of 2026-12-04: 200 signatures in an hour under a policy with no rate limit kept
/// only the newest 64; an update to "100 an hour" then counted 64 and allowed 36 more.
#[test]
fn a_limit_added_by_an_update_never_counts_a_dropped_signature_as_none() {
    let free = policy("");
    let mut c = Counters::new();
    for i in 0..200 {
        let now = t0() + 10 + i;
        let ch = ask(&free, &c, now).expect("no rate limit");
        c.charge(&free, &ch, t0(), now);
    }
    assert_eq!(c.recent.len() as u64, state::MIN_RATE_HISTORY, "the history kept");
    let limited = policy("[[rate_limits]]\nmax = 100\nwindow = \"1h\"\n");
    let d = ask(&limited, &c, t0() + 300).expect_err("200 were signed in this hour");
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("rate_limits[0]")), "{d:?}");
    // Once the window has passed the last signature dropped, the history counts again.
    let later = t0() + 10 + 135 + 3600;
    let n = ask(&limited, &c, later).map(|_| ()).map_err(|d| d.reason);
    assert_eq!(n, Ok(()), "the window no longer reaches a dropped signature");
}

/// Under the policy that kept the history, counting a window that reaches a dropped
/// signature as full never changes a decision: on random bursts against limits of 100 an
/// hour and 10 a minute, every decision equals the one counted from every signature.
#[test]
fn under_one_policy_the_history_kept_decides_as_the_whole_history_would() {
    let p = policy("[[rate_limits]]\nmax = 100\nwindow = \"1h\"\n[[rate_limits]]\nmax = 10\nwindow = \"1 minute\"\n");
    let mut c = Counters::new();
    let mut all: Vec<u64> = Vec::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut now = t0() + 10;
    let (mut allowed, mut refused, mut unknown) = (0, 0, 0);
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        now += [0, 1, 3, 20, 200][(seed % 5) as usize];
        let exact = |w: u64, max: u64| all.iter().filter(|&&s| now - s < w).count() as u64 + 1 > max;
        let refuse = exact(3600, 100) || exact(60, 10);
        unknown += usize::from([3600, 60].iter().any(|&w| c.recent_within(now, w).is_none()));
        match ask(&p, &c, now) {
            Ok(ch) => {
                assert!(!refuse, "allowed at {now}, but the whole history refuses");
                c.charge(&p, &ch, t0(), now);
                all.push(now);
                allowed += 1;
            }
            Err(d) => {
                assert_eq!(d.code, ErrorCode::RateLimited, "{d:?}");
                assert!(refuse, "refused at {now} ({d}), but the whole history allows");
                refused += 1;
            }
        }
    }
    // Under the policy that kept it, no window ever reaches a dropped signature.
    assert_eq!(unknown, 0);
    assert!(allowed > 1000 && refused > 1000, "{allowed} allowed, {refused} refused, {unknown} unknown");
}
