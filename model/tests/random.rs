//! Random sequences through the model: it never panics, a denial always names a code, and
//! the invariants that hold whatever the rules' details hold (caps per period, quota).

mod util;

use alloy_primitives::{Bytes, U256};
use bridle_common::period::Period;
use bridle_common::policy::doc::*;
use bridle_model::{Ledger, Req, Verdict};
use util::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn policy(r: &mut Rng) -> Policy {
    let mut p = base();
    p.tokens.push(token("DAI", DAI, 18, Some(8453)));
    p.calls.push(calls(None, &["*"]));
    p.calls.push(calls(Some(DEAD), &["receive()"]));
    let periods = [Period::Minute, Period::Hour, Period::Day, Period::Week, Period::Month, Period::Session];
    p.limits = vec![
        limit(usdc_asset(), periods[r.below(6) as usize], usdc(50 + r.below(200))),
        limit(Asset::Native, periods[r.below(6) as usize], U256::from(r.below(1 << 34))),
    ];
    p.quota = Some(10 + r.below(30));
    p.rate_limits = vec![RateLimit { max: 2 + r.below(6), window: r.below(120) }];
    p.max_value_per_call = Some(U256::from(r.below(1 << 31)));
    p.approvals.spenders = vec![A, B];
    p.approvals.caps = vec![ApprovalCap { token: "USDC".into(), max: usdc(r.below(2000)) }];
    p.prices = vec![Price { asset: usdc_asset(), usd: usd(1) }, Price { asset: Asset::Native, usd: usd(3000) }];
    p.exposure_ceiling = (r.below(2) == 0).then(|| usd(r.below(3000)));
    p.permits = vec![PermitRule { kind: PermitKind::Eip2612, tokens: Vec::new(), max_deadline: 600, permit2: None }];
    p.user_operations.entry_points = vec![EP];
    p.escalate = (r.below(3) == 0).then(|| {
        Box::new(Escalation {
            above_value: Some(EscalateValue { asset: usdc_asset(), max: usdc(r.below(300)) }),
            above_usd: (r.below(2) == 0).then(|| usd(r.below(500))),
            per: Some(periods[r.below(6) as usize]),
            ttl: r.below(600),
        })
    });
    p.trip_wire = (r.below(2) == 0).then(|| TripWire { denials: 1 + r.below(5) as u32, within: r.below(600) });
    p
}

fn call(r: &mut Rng) -> (alloy_primitives::Address, U256, Bytes) {
    let targets = [USDC, USDC, USDC, DAI, DEAD, A];
    let to = if r.below(200) == 0 { PERMIT } else { targets[r.below(targets.len() as u64) as usize] };
    let amount = usdc(r.below(120));
    let who = [A, B, DEAD, OWNER][r.below(4) as usize];
    let data = match r.below(12) {
        0 => transfer(who, amount),
        1 => approve(who, if r.below(4) == 0 { U256::ZERO } else { amount * U256::from(10) }),
        2 => increase(who, amount),
        3 => Bytes::new(),
        4 => Bytes::from((0..r.below(70)).map(|_| r.below(256) as u8).collect::<Vec<u8>>()),
        5 => {
            let mut d = transfer(who, amount).to_vec();
            d.truncate(r.below(68) as usize);
            d.into()
        }
        6 => approve(who, U256::MAX),
        _ => transfer(who, amount),
    };
    (to, U256::from(r.below(2) * r.below(1 << 30)), data)
}

const PERMIT: alloy_primitives::Address = bridle_model::PERMIT2;

fn request(r: &mut Rng, t: u64) -> Req {
    let chain = [CHAIN, CHAIN, CHAIN, 8453, 1][r.below(5) as usize];
    match r.below(5) {
        0 => Req::Permit {
            chain_id: chain,
            token: [USDC, DAI][r.below(2) as usize],
            spender: [A, B, DEAD][r.below(3) as usize],
            value: usdc(r.below(1500)),
            deadline: t + r.below(900),
        },
        1 => Req::UserOp {
            chain_id: chain,
            entry_point: EP,
            sender: SMART,
            nonce: U256::from(r.below(3)) << 64 | U256::from(r.below(4)),
            calls: (0..1 + r.below(3)).map(|_| call(r)).collect(),
            gas: r.below(400_000),
            max_fee_per_gas: r.below(30_000) as u128,
            max_priority_fee_per_gas: r.below(3_000_000) as u128,
        },
        _ => {
            let (to, value, data) = call(r);
            Req::Tx {
                chain_id: chain,
                nonce: r.below(5),
                to: (r.below(20) != 0).then_some(to),
                value,
                data,
                gas_limit: r.below(300_000),
                max_fee_per_gas: r.below(30_000) as u128,
                max_priority_fee_per_gas: r.below(3_000_000) as u128,
                access_list: vec![],
            }
        }
    }
}

#[test]
fn random_sequences_never_panic_and_respect_caps() {
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let (mut allowed, mut denied, mut pending, mut limits) = (0, 0, 0, 0);
    for _ in 0..300 {
        let p = policy(&mut r);
        let mut m = model(&p);
        let mut clock = t0();
        let mut ids = Vec::new();
        for _ in 0..25 {
            clock = (clock + r.below(400)).saturating_sub(r.below(100));
            let mut asked = None;
            let v = match r.below(40) {
                0..=3 if !ids.is_empty() => m.approve(ids[r.below(ids.len() as u64) as usize], clock),
                4..=6 => {
                    m.exposure_usd(clock);
                    continue;
                }
                7 => {
                    // An owner update (the same policy): lifts a suspension, forgets denials.
                    let was_suspended = m.is_suspended();
                    m.update(&p, clock).unwrap();
                    assert!(!m.is_suspended());
                    if was_suspended {
                        assert_eq!(m.remembered_denials(clock), 0);
                    }
                    continue;
                }
                _ => {
                    let req = request(&mut r, clock);
                    let v = m.sign(&req, clock);
                    asked = Some(req);
                    v
                }
            };
            match v {
                Verdict::Allowed => allowed += 1,
                Verdict::Pending(id) => {
                    pending += 1;
                    ids.push(id);
                    // Asked again at once: still pending, under the same id, nothing charged.
                    if let Some(req) = &asked {
                        let uses = m.uses();
                        assert_eq!(m.sign(req, clock), Verdict::Pending(id));
                        assert_eq!(m.uses(), uses);
                    }
                }
                Verdict::Denied(codes) if codes == [bridle_model::MODEL_LIMIT] => {
                    limits += 1;
                    break;
                }
                Verdict::Denied(codes) => {
                    assert!(!codes.is_empty());
                    denied += 1;
                }
            }
            let now = clock.max(t0());
            for l in &p.limits {
                let asset = match &l.asset {
                    Asset::Native => Ledger::Native,
                    Asset::Token(_) => Ledger::Token(USDC),
                };
                assert!(m.spent_in(asset, l.period, now) <= l.max);
            }
            assert!(m.uses() <= p.quota.unwrap());
        }
    }
    eprintln!("allowed {allowed}, denied {denied}, pending {pending}, model limits {limits}");
    assert!(allowed > 100 && denied > 100);
}
