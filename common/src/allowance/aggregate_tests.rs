use super::*;
use crate::policy::file;
use alloy_primitives::address;

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const WETH: Address = address!("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2");

fn policy(extra: &str) -> Arc<CompiledPolicy> {
    let text = format!(
        r#"
name = "aggregate"
chains = [1]
valid_for = "1 day"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }}, WETH = {{ address = "{WETH}", decimals = 18 }} }}
{extra}
"#
    );
    let now = crate::period::parse_time("2026-11-30T10:00:00Z").unwrap();
    Arc::new(CompiledPolicy::compile(file::resolve_text(&text, now).unwrap()).unwrap())
}

fn usdc(n: u64) -> Holdings {
    Holdings::from([((1, USDC), U256::from(n) * U256::from(1_000_000u64))])
}

fn raise(after: Holdings) -> Raise {
    Raise { after, saturated: false }
}

fn addr(n: u8) -> Address {
    Address::with_last_byte(n)
}

fn rule(r: Result<(), Denial>) -> Option<String> {
    r.err().map(|d| {
        assert_eq!(d.code, ErrorCode::ExposureCeiling, "{d}");
        d.rule.unwrap_or_default()
    })
}

#[test]
fn an_owner_ceiling_binds_every_session_of_that_owner_and_only_raises() {
    let (o, a) = (addr(1), addr(2));
    let declaring = policy("prices = { USDC = \"1.00\" }\nowner_exposure_ceiling = \"1000 USD\"");
    let mut b = Book::new();
    b.publish(addr(10), o, a, usdc(600), Some(declaring.clone()));
    b.publish(addr(11), o, a, usdc(300), None);
    // Session 12 (declaring nothing itself) is bound: 600 + 300 + 100 = 1000 passes.
    assert_eq!(rule(b.check(addr(12), o, a, &raise(usdc(100)))), None);
    // 600 + 300 + 101 does not.
    assert_eq!(rule(b.check(addr(12), o, a, &raise(usdc(101)))).as_deref(), Some("owner_exposure_ceiling"));
    // Session 11 replacing its own 300 by 400 is a raise to 1000: allowed; to 401: refused.
    assert_eq!(rule(b.check(addr(11), o, a, &raise(usdc(400)))), None);
    assert!(rule(b.check(addr(11), o, a, &raise(usdc(401)))).is_some());
    // Over the ceiling already, a request checked at all is refused, even one that leaves
    // the session's figure where it was: the figure is a sum of worst cases from different
    // histories, which the request may make coincide (a review of 2026-12-07). A request that
    // makes no new state possible (a revocation, a fee bump) is never checked (its session
    // computes no `Raise`).
    b.publish(addr(11), o, a, usdc(900), None);
    assert!(rule(b.check(addr(11), o, a, &raise(usdc(900)))).is_some());
    // Another owner is not bound by it.
    assert_eq!(rule(b.check(addr(20), addr(3), a, &raise(usdc(10_000)))), None);
    // Revoked (published without its declaration): the ceiling no longer binds.
    b.publish(addr(10), o, a, usdc(600), None);
    assert_eq!(rule(b.check(addr(12), o, a, &raise(usdc(5_000)))), None);
}

#[test]
fn an_agent_ceiling_counts_every_owner_but_binds_only_the_owner_who_signed_it() {
    let agent = addr(2);
    let (alice, bob) = (addr(1), addr(3));
    let capped = policy("prices = { USDC = \"1.00\" }\nagent_exposure_ceiling = \"500 USD\"");
    let mut b = Book::new();
    b.publish(addr(10), alice, agent, usdc(100), Some(capped));
    // Bob did not opt in: his session raises freely and counts for Alice's ceiling.
    assert_eq!(rule(b.check(addr(20), bob, agent, &raise(usdc(1_000)))), None);
    b.publish(addr(20), bob, agent, usdc(350), None);
    assert_eq!(rule(b.check(addr(10), alice, agent, &raise(usdc(150)))), None);
    assert_eq!(rule(b.check(addr(10), alice, agent, &raise(usdc(151)))).as_deref(), Some("agent_exposure_ceiling"));
    // Another agent of Alice's is not in this group.
    assert_eq!(rule(b.check(addr(11), alice, addr(9), &raise(usdc(1_000)))), None);
}

#[test]
fn the_strictest_ceiling_applies_each_at_its_own_prices_and_unpriced_holdings_are_refused() {
    let (o, a) = (addr(1), addr(2));
    let mut b = Book::new();
    b.publish(
        addr(10),
        o,
        a,
        Holdings::new(),
        Some(policy("prices = { USDC = \"1.00\" }\nowner_exposure_ceiling = \"1000 USD\"")),
    );
    b.publish(
        addr(11),
        o,
        a,
        Holdings::new(),
        Some(policy("prices = { USDC = \"2.00\" }\nowner_exposure_ceiling = \"1000 USD\"")),
    );
    // 600 USDC is 600 USD at one table, 1200 USD at the other: refused.
    let d = b.check(addr(12), o, a, &raise(usdc(600))).unwrap_err();
    assert!(d.reason.contains("1,200") || d.reason.contains("1200"), "{d}");
    assert_eq!(rule(b.check(addr(12), o, a, &raise(usdc(500)))), None);
    // WETH is priced by neither table: an aggregate holding it cannot be valued.
    let weth = Holdings::from([((1, WETH), U256::from(1u64))]);
    assert!(rule(b.check(addr(12), o, a, &raise(weth))).is_some());
}

#[test]
fn sums_are_exact_and_unlimited_approvals_do_not_saturate_them() {
    let (o, a) = (addr(1), addr(2));
    let mut b = Book::new();
    let max = Holdings::from([((1, USDC), U256::MAX)]);
    b.publish(addr(10), o, a, max.clone(), None);
    b.publish(addr(11), o, a, max.clone(), None);
    b.publish(addr(12), o, a, usdc(7), None);
    b.remove(&addr(10));
    b.publish(addr(11), o, a, Holdings::new(), None);
    let v = b.view(o, a);
    assert_eq!(v[0].holdings, vec![(1, USDC, U256::from(7_000_000u64))]);
    assert_eq!(v[0].sessions, 1);
    b.remove(&addr(12));
    assert!(b.is_empty());
    assert!(b.view(o, a).iter().all(|g| g.holdings.is_empty() && g.sessions == 0));
}

/// A second, naive model: every check recomputes the groups from every entry. Random
/// publications, removals and checks must agree with the book's incremental sums.
/// A review of 2026-12-05: an agent's own session (a throwaway owner, no ceilings) approving
/// 10^66 of a priced token made the group worth 2^256 − 1 or more; every alternative then
/// saturated alike, no request counted as a raise, and every agent ceiling binding it was
/// off. Such a group cannot be valued, and a raise in it is refused.
#[test]
fn a_group_worth_beyond_u256_is_refused_not_waved_through() {
    let agent = addr(2);
    let (alice, mallory) = (addr(1), addr(3));
    let capped = policy("prices = { USDC = \"1.00\" }\nagent_exposure_ceiling = \"5000 USD\"");
    let mut b = Book::new();
    b.publish(addr(10), alice, agent, usdc(100), Some(capped.clone()));
    let huge = U256::from(10u64).pow(U256::from(66u64));
    b.publish(addr(30), mallory, agent, Holdings::from([((1, USDC), huge)]), None);
    for n in [1u64, 100_000] {
        let d = b.check(addr(11), alice, agent, &raise(usdc(n))).unwrap_err();
        assert_eq!(d.rule.as_deref(), Some("agent_exposure_ceiling"), "{d}");
        assert!(d.reason.contains("cannot be checked"), "{d}");
    }
    // Amounts whose sum passes 2^256 − 1 (two sessions of U256::MAX − 1) alike, at any price.
    let mut b = Book::new();
    let cheap = policy("prices = { USDC = \"0.000001\" }\nagent_exposure_ceiling = \"5000 USD\"");
    b.publish(addr(10), alice, agent, Holdings::new(), Some(cheap));
    for s in [30u8, 31] {
        b.publish(addr(s), mallory, agent, Holdings::from([((1, USDC), U256::MAX - U256::from(1u8))]), None);
    }
    assert!(b.check(addr(11), alice, agent, &raise(usdc(1))).is_err());
    // A session's own sum capped at exactly 2^256 − 1 (two unlimited-looking approvals of a
    // token worth less than a dollar): not measurable, refused; and so is a request its
    // session measured as saturated.
    let mut b = Book::new();
    let cents = policy("prices = { USDC = \"0.9999\" }\nagent_exposure_ceiling = \"5000 USD\"");
    b.publish(addr(10), alice, agent, Holdings::new(), Some(cents));
    let r = Raise { after: Holdings::from([((1, USDC), U256::MAX)]), saturated: false };
    assert!(rule(b.check(addr(11), alice, agent, &r)).is_some());
    let r = Raise { after: usdc(10), saturated: true };
    assert!(rule(b.check(addr(11), alice, agent, &r)).is_some(), "saturated as its session measured it");
    let r = Raise { after: usdc(10), saturated: false };
    assert_eq!(rule(b.check(addr(11), alice, agent, &r)), None);
    // Without the huge holding, the same request is valued and passes.
    let mut b = Book::new();
    b.publish(addr(10), alice, agent, usdc(100), Some(capped));
    assert_eq!(rule(b.check(addr(11), alice, agent, &raise(usdc(100)))), None);
}

#[test]
fn the_book_agrees_with_a_naive_recomputation_on_random_sequences() {
    let declaring = [
        None,
        Some(policy("prices = { USDC = \"1.00\" }\nowner_exposure_ceiling = \"1000 USD\"")),
        Some(policy("prices = { USDC = \"1.50\" }\nagent_exposure_ceiling = \"2000 USD\"")),
        Some(policy(
            "prices = { USDC = \"1.00\" }\nowner_exposure_ceiling = \"700 USD\"\nagent_exposure_ceiling = \"900 USD\"",
        )),
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _round in 0..200 {
        let mut b = Book::new();
        // session → (owner, agent, holdings in USDC, declaration index)
        let mut naive: HashMap<Address, (Address, Address, u64, usize)> = HashMap::new();
        for _ in 0..60 {
            let s = addr(10 + next(12) as u8);
            let (o, a) = (addr(1 + next(2) as u8), addr(5 + next(2) as u8));
            let (o, a) = naive.get(&s).map(|e| (e.0, e.1)).unwrap_or((o, a));
            match next(4) {
                0 => {
                    b.remove(&s);
                    naive.remove(&s);
                }
                1 | 2 => {
                    let (h, d) = (next(400), next(4) as usize);
                    b.publish(s, o, a, if h == 0 { Holdings::new() } else { usdc(h) }, declaring[d].clone());
                    naive.insert(s, (o, a, h, d));
                }
                _ => {
                    let mine = naive.get(&s).map_or(0, |e| e.2);
                    let after = next(500);
                    let r = raise(usdc(after));
                    let got = b.check(s, o, a, &r).is_ok();
                    // The model: each ceiling declared by a session of the same owner (agent
                    // ceilings: with the same agent), over the group with `after` for `s`.
                    let mut want = true;
                    for (_, (oo, aa, _, d)) in naive.iter().filter(|(_, e)| e.0 == o && e.3 != 0) {
                        let p = declaring[*d].as_ref().unwrap();
                        let price = if *d == 2 { 3u64 } else { 2 }; // half-dollars per USDC
                        let scopes = [
                            (p.doc.owner_exposure_ceiling, true),
                            (p.doc.agent_exposure_ceiling.filter(|_| *aa == a), false),
                        ];
                        let _ = oo;
                        for (c, by_owner) in scopes {
                            let Some(c) = c else { continue };
                            let others: u64 = naive
                                .iter()
                                .filter(|(x, e)| **x != s && if by_owner { e.0 == o } else { e.1 == a })
                                .map(|(_, e)| e.2)
                                .sum();
                            let usd = |n: u64| {
                                U256::from((others + n) * price) * crate::allowance::usd_unit() / U256::from(2u8)
                            };
                            if usd(after) > c {
                                want = false;
                            }
                        }
                    }
                    assert_eq!(got, want, "session {s} after {after} mine {mine}: {naive:?}");
                }
            }
        }
    }
}

/// A session's status (anyone may ask for it) names at most `MAX_LISTED` holdings, ceilings
/// and unpriced tokens per ceiling of each group, the lowest ceilings first, and counts the
/// rest: one owner's many sessions cannot make it as large as they like.
#[test]
fn a_groups_view_lists_a_bounded_number_and_counts_the_rest() {
    let (o, a) = (addr(1), addr(2));
    let mut b = Book::new();
    let tokens = 100u32;
    let ceilings = 80u32;
    let token = |i: u32| Address::left_padding_from(&(1000 + i).to_be_bytes());
    // Sessions declaring 80 distinct owner-wide ceilings (their policies price only USDC),
    // and one holding 100 tokens no policy prices.
    for i in 0..ceilings {
        let p = policy(&format!("prices = {{ USDC = \"1.00\" }}\nowner_exposure_ceiling = \"{} USD\"", 1000 + i));
        b.publish(Address::left_padding_from(&(10_000 + i).to_be_bytes()), o, a, usdc(1), Some(p));
    }
    let unpriced: Holdings = (0..tokens).map(|i| ((1, token(i)), U256::from(5))).collect();
    b.publish(addr(200), o, a, unpriced, None);
    let views = b.view(o, a);
    let owner = views.iter().find(|g| g.scope == Scope::Owner).unwrap();
    assert_eq!(owner.holdings.len(), MAX_LISTED);
    assert_eq!(owner.holdings_omitted, u64::from(tokens + 1) - MAX_LISTED as u64);
    assert_eq!(owner.limits.len(), MAX_LISTED);
    assert_eq!(owner.limits_omitted, u64::from(ceilings) - MAX_LISTED as u64);
    // The lowest ceilings, in order.
    let listed: Vec<U256> = owner.limits.iter().map(|l| l.ceiling).collect();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    assert_eq!(listed[0], U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64)));
    for l in &owner.limits {
        assert_eq!(l.exposure.unpriced.len(), MAX_LISTED);
        assert_eq!(l.exposure.unpriced_omitted, u64::from(tokens) - MAX_LISTED as u64);
    }
    // A refusal names as many and counts the rest.
    let d = b.check(addr(201), o, a, &raise(usdc(1))).unwrap_err();
    assert!(d.reason.contains(&format!("and {} more", tokens as usize - MAX_LISTED)), "{d}");
    // The status as sent carries the counts.
    let s = crate::protocol::AggregateStatus::from(owner.clone());
    assert_eq!((s.holdings.len(), s.ceilings.len()), (MAX_LISTED, MAX_LISTED));
    assert_eq!(s.ceilings_omitted, 16);
    assert_eq!(s.ceilings[0].unpriced_omitted, 36);
}

fn declaring(n: usize, scope: &str) -> Arc<CompiledPolicy> {
    // A distinct policy per `n` (its ceiling differs), each with the same prices.
    policy(&format!("prices = {{ USDC = \"1.00\" }}\n{scope}_exposure_ceiling = \"{} USD\"", 1000 + n))
}

#[test]
fn a_group_may_carry_at_most_max_declaring_distinct_ceiling_policies() {
    let (o, a, other) = (addr(1), addr(2), addr(3));
    let mut b = Book::new();
    for n in 0..MAX_DECLARING {
        let p = declaring(n, "owner");
        b.admit(addr(100 + n as u8), o, a, &p).unwrap();
        b.publish(addr(100 + n as u8), o, a, Holdings::new(), Some(p));
    }
    let one_more = declaring(MAX_DECLARING, "owner");
    let d = b.admit(addr(250), o, a, &one_more).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::RateLimited, Some("owner_exposure_ceiling")), "{d}");
    assert!(d.reason.contains("64 distinct policies"), "{d}");
    // A policy already carried, one declaring nothing, and another owner are admitted.
    b.admit(addr(250), o, a, &declaring(3, "owner")).unwrap();
    b.admit(addr(250), o, a, &policy("")).unwrap();
    b.admit(addr(250), other, a, &one_more).unwrap();
    // A session replacing the last copy of its own declaring policy frees its place …
    b.admit(addr(100), o, a, &one_more).unwrap();
    // … but not while another session carries the same policy.
    b.publish(addr(251), o, a, Holdings::new(), Some(declaring(0, "owner")));
    assert!(b.admit(addr(100), o, a, &one_more).is_err());
    // Agent-wide ceilings are counted per owner and agent key.
    let mut b = Book::new();
    for n in 0..MAX_DECLARING {
        b.publish(addr(100 + n as u8), o, a, Holdings::new(), Some(declaring(n, "agent")));
    }
    let d = b.admit(addr(250), o, a, &declaring(MAX_DECLARING, "agent")).unwrap_err();
    assert_eq!(d.rule.as_deref(), Some("agent_exposure_ceiling"));
    b.admit(addr(250), o, other, &declaring(MAX_DECLARING, "agent")).unwrap();
    // A session gone (revoked, dropped) leaves the count.
    b.remove(&addr(100));
    b.admit(addr(250), o, a, &declaring(MAX_DECLARING, "agent")).unwrap();
}

#[test]
fn the_lowest_of_many_ceilings_binds_whichever_scope_declares_it() {
    let (o, a) = (addr(1), addr(2));
    let mut b = Book::new();
    for n in (0..MAX_DECLARING).rev() {
        b.publish(addr(100 + n as u8), o, a, usdc(10), Some(declaring(n, "owner")));
    }
    b.publish(
        addr(200),
        o,
        a,
        Holdings::new(),
        Some(policy("prices = { USDC = \"1.00\" }\nagent_exposure_ceiling = \"700 USD\"")),
    );
    // 64 × 10 held; the agent-wide ceiling (700) binds before the owner-wide (1000 …).
    assert_eq!(rule(b.check(addr(200), o, a, &raise(usdc(60)))), None);
    assert_eq!(rule(b.check(addr(200), o, a, &raise(usdc(61)))).as_deref(), Some("agent_exposure_ceiling"));
    // Without it, the lowest owner-wide ceiling (1000) binds.
    b.remove(&addr(200));
    assert_eq!(rule(b.check(addr(200), o, a, &raise(usdc(360)))), None);
    assert_eq!(rule(b.check(addr(200), o, a, &raise(usdc(361)))).as_deref(), Some("owner_exposure_ceiling"));
}

/// One check values at most MAX_CHECK_WORK token amounts (a measurement found 128 policies ×
/// 512 alternatives × 64 tokens taking 1.86 s under the enclave-wide lock): past it the
/// request is refused unchecked, naming a ceiling's rule; an ordinary request is far within.
#[test]
fn a_check_values_at_most_max_check_work_token_amounts() {
    let (o, a, s) = (addr(1), addr(2), addr(200));
    let mut b = Book::new();
    for n in 0..MAX_DECLARING {
        b.publish(addr(100 + n as u8), o, a, usdc(1), Some(declaring(n, "owner")));
    }
    assert_eq!(rule(b.check(s, o, a, &raise(usdc(100)))), None);
    // A request holding more tokens than the bound allows across 64 ceiling policies.
    let many: Holdings = (0..MAX_CHECK_WORK as u64)
        .map(|i| ((1u64, Address::left_padding_from(&i.to_be_bytes())), U256::from(1u8)))
        .collect();
    let d = b.check(s, o, a, &raise(many)).unwrap_err();
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::ExposureCeiling, Some("owner_exposure_ceiling")), "{d}");
    assert!(d.reason.contains(&format!("more than {MAX_CHECK_WORK} token amounts")), "{d}");
}

/// A status (anyone may ask for one) values its ceilings within MAX_CHECK_WORK too, across
/// both groups: 64 ceilings over 20 000 tokens list the 3 lowest and count the rest; a
/// check over 40 000 refuses before copying the group.
#[test]
fn a_status_values_ceilings_within_the_work_bound() {
    let (o, a) = (addr(1), addr(2));
    let tokens = |n: u32| -> Holdings {
        (0..n).map(|i| ((1u64, Address::left_padding_from(&i.to_be_bytes())), U256::from(1u8))).collect()
    };
    let mut b = Book::new();
    b.publish(addr(250), o, a, tokens(20_000), None);
    for n in 0..MAX_DECLARING {
        b.publish(addr(100 + n as u8), o, a, Holdings::new(), Some(declaring(n, "owner")));
    }
    let v = b.view(o, a);
    assert_eq!((v[0].limits.len(), v[0].limits_omitted), (3, 61));
    assert!(v[0].limits.windows(2).all(|w| w[0].ceiling <= w[1].ceiling), "the lowest first");
    assert_eq!((v[1].limits.len(), v[1].limits_omitted), (0, 0));
    // Within the bound, a group this large is valued (and refused here for its unpriced
    // tokens); twice as large, it is refused before it is copied.
    let r = raise(usdc(1));
    let d = b.check(addr(251), o, a, &r).unwrap_err();
    assert!(d.reason.contains("no price"), "{}", &d.reason[..200]);
    b.publish(addr(250), o, a, tokens(40_000), None);
    let d = b.check(addr(251), o, a, &r).unwrap_err();
    assert!(d.reason.contains("token amounts"), "{}", &d.reason[..200]);
}
