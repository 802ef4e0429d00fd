//! The differential test's machinery: random policies and request sequences, run through
//! the engine's decision core (`bridle_common::machine`) and the independent reference
//! model (`bridle_model`), every verdict compared.
//!
//! The contract: an engine signature is a model `Allowed`; an engine `pending_approval` is a
//! model `Pending`; an engine denial's code is one of the model's failing checks; the
//! exposure and uses agree after every step. The model's `model_limit` ends a sequence.

use alloy_primitives::{address, Address, Bytes, Signature, B256, U256};
use alloy_sol_types::SolCall;
use bridle_common::machine::{Machine, Signer};
use bridle_common::payload::prepare;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{CompiledPolicy, Policy};
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};
use bridle_model::{Ledger, Model, Req, Verdict, MODEL_LIMIT};
use std::collections::HashMap;

pub const T0: u64 = 1_798_761_600; // 2027-01-01T00:00:00Z
pub const OWNER: Address = address!("00000000000000000000000000000000000000aa");
pub const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");
pub const TOK1: Address = address!("0000000000000000000000000000000000001001");
pub const TOK2: Address = address!("0000000000000000000000000000000000001002");
pub const OTHER: Address = address!("0000000000000000000000000000000000002001");
pub const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
pub const S1: Address = address!("000000000000000000000000000000000000a001");
pub const S2: Address = address!("000000000000000000000000000000000000a002");
pub const SCA: Address = address!("0000000000000000000000000000000000005ca0");
/// The delegation manager random policies list, one they never list, and two delegators.
pub const MGR: Address = address!("000000000000000000000000000000000000da7a");
pub const MGR2: Address = address!("000000000000000000000000000000000000da7b");
pub const D1: Address = address!("000000000000000000000000000000000000d001");
pub const D2: Address = address!("000000000000000000000000000000000000d002");

alloy_sol_types::sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
    function transferAndCall(address to, uint256 amount, bytes data) returns (bool);
    function push(address to, uint256 amount);
}

/// Where the sequences' choices come from: a small deterministic generator (xorshift*),
/// or a fuzzer's bytes (each choice reads the next 8; zeros once they run out), so that a
/// coverage-guided fuzzer steers the choices themselves.
pub enum Rng {
    Seeded(u64),
    Bytes(Vec<u8>, usize),
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng::Seeded(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn from_bytes(data: &[u8]) -> Rng {
        Rng::Bytes(data.to_vec(), 0)
    }
    pub fn next_u64(&mut self) -> u64 {
        match self {
            Rng::Seeded(x) => {
                *x ^= *x >> 12;
                *x ^= *x << 25;
                *x ^= *x >> 27;
                x.wrapping_mul(0x2545_f491_4f6c_dd1d)
            }
            Rng::Bytes(data, pos) => {
                let mut w = [0u8; 8];
                for b in w.iter_mut() {
                    *b = data.get(*pos).copied().unwrap_or(0);
                    *pos += 1;
                }
                u64::from_le_bytes(w)
            }
        }
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// A random policy (TOML), within the model's scope, without delegations.
pub fn random_policy(r: &mut Rng, created: u64) -> String {
    random_policy_with(r, created, false)
}

/// A random policy; with `delegations`, it may list delegation managers (RULES §5b).
pub fn random_policy_with(r: &mut Rng, created: u64, delegations: bool) -> String {
    let periods = ["minute", "hour", "day", "week", "month", "session"];
    let mut s = String::from("name = \"diff\"\n");
    // 42161 (Arbitrum One) takes L1 data gas from the gas limit, and 777 is not known to
    // spend it on execution alone unless the policy lists it (RULES §6).
    let options: [&[u64]; 5] = [&[1], &[1, 10], &[1, 10, 31337], &[1, 42_161], &[1, 777]];
    let chains = *r.pick(&options);
    s += &format!("chains = {chains:?}\n");
    if r.chance(15) {
        s += &format!("valid_after = {}\n", created + r.below(3) * 600);
    }
    s += &format!("valid_until = {}\nmax_duration = \"40 days\"\n", created + 3600 * (1 + r.below(24 * 35)));
    if r.chance(30) {
        s += &format!("quota = {}\n", 3 + r.below(30));
    }
    let wildcard = r.chance(25);
    if wildcard || r.chance(40) {
        s += &format!("max_value_per_call = \"{} wei\"\n", 1 + r.below(1000));
    }
    if r.chance(30) {
        let options: [&[&str]; 2] = [&["$owner"], &["$owner", "0x00000000000000000000000000000000000a11ce"]];
        let rs = *r.pick(&options);
        s += &format!("recipients = {rs:?}\n");
    }
    let priced = r.chance(40);
    if priced {
        s += "prices = { T1 = \"1.5\", T2 = \"2\", ETH = \"3\" }\n";
        if r.chance(70) {
            s += &format!("exposure_ceiling = \"{} USD\"\n", 10 + r.below(3000));
        }
    }
    if r.chance(25) {
        let per = r.pick(&periods);
        if priced && r.chance(50) {
            s += &format!(
                "escalate = {{ above_usd = \"{} USD\", per = \"{per}\", ttl = \"{}m\" }}\n",
                10 + r.below(500),
                1 + r.below(20)
            );
        } else {
            s += &format!(
                "escalate = {{ above_value = \"{} T1\", per = \"{per}\", ttl = \"{}m\" }}\n",
                1 + r.below(300),
                1 + r.below(20)
            );
        }
    }
    if r.chance(15) {
        s += &format!("trip_wire = {{ denials = {}, within = \"{}m\" }}\n", 2 + r.below(8), 1 + r.below(30));
    }
    s += &format!("[tokens]\nT1 = {{ address = \"{TOK1}\", decimals = {} }}\n", r.pick(&[0u8, 2, 6]));
    s += &format!("T2 = {{ address = \"{TOK2}\", decimals = 3, chain_id = {} }}\n", r.pick(chains));
    // Limits: a wildcard needs a cap on every token.
    let mut capped = [false; 2];
    for _ in 0..r.below(4) {
        let asset = r.pick(&["ETH", "T1", "T2"]);
        let unit = if *asset == "ETH" { "wei" } else { asset };
        s += &format!("[[limits]]\nmax = \"{} {unit}\"\nper = \"{}\"\n", 200 + r.below(5000), r.pick(&periods));
        capped[0] |= *asset == "T1";
        capped[1] |= *asset == "T2";
    }
    for (i, c) in capped.iter().enumerate() {
        if wildcard && !c {
            s += &format!("[[limits]]\nmax = \"{} T{}\"\nper = \"{}\"\n", r.below(2000), i + 1, r.pick(&periods));
        }
    }
    if r.chance(20) {
        let a = r.pick(&["T1", "ETH"]);
        let unit = if *a == "ETH" { "wei" } else { a };
        s += &format!(
            "[[streams]]\ninitial = \"{} {unit}\"\nrate = \"{} {unit}\"\nevery = \"{}s\"\nmax = \"{} {unit}\"\n",
            r.below(50),
            r.below(20),
            1 + r.below(3600),
            50 + r.below(2000)
        );
    }
    let fns = |r: &mut Rng| -> String {
        if r.chance(30) {
            "[\"*\"]".into()
        } else {
            let all = [
                "transfer(address,uint256)",
                "approve(address,uint256)",
                "increaseAllowance(address,uint256)",
                "transferFrom(address,address,uint256)",
                "push(address,uint256)",
            ];
            let mut v: Vec<&str> = all[1..].iter().copied().filter(|_| r.chance(60)).collect();
            v.push(all[0]);
            format!("{v:?}")
        }
    };
    if r.chance(95) {
        s += &format!("[[calls]]\ntarget = \"T1\"\nfunctions = {}\n", fns(r));
    }
    if r.chance(70) {
        s += &format!("[[calls]]\ntarget = \"T2\"\nfunctions = {}\n", fns(r));
    }
    if r.chance(70) {
        s += &format!("[[calls]]\ntarget = \"{ALICE}\"\nfunctions = [\"receive()\"]\n");
    }
    if wildcard {
        s += "[[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n";
    }
    for _ in 0..r.below(3) {
        s += &format!("[[rate_limits]]\nmax = {}\nwindow = \"{}s\"\n", 2 + r.below(12), 1 + r.below(7200));
    }
    s += "[gas]\n";
    if r.chance(30) {
        s += &format!("max_fee_per_gas = \"{} wei\"\n", 10 + r.below(40));
    }
    // approvals.revoke_gas is at most gas.max_gas_limit (a policy with both contradicting is
    // refused).
    let revoke_gas = r.chance(30).then(|| 60_000 + r.below(110_000));
    if r.chance(20) {
        s += &format!("max_gas_limit = {}\n", revoke_gas.unwrap_or(21_000) + r.below(200_000));
    }
    if r.chance(30) {
        s += "count_in_native = true\n";
    }
    if r.chance(30) {
        s += &format!("[[gas.limits]]\nmax = \"{} wei\"\nper = \"{}\"\n", r.below(100_000_000), r.pick(&periods));
    }
    s += &format!(
        "[approvals]\nspenders = [\"{S1}\"{}]\n",
        if r.chance(50) { format!(", \"{S2}\"") } else { String::new() }
    );
    if let Some(g) = revoke_gas {
        s += &format!("revoke_gas = {g}\n");
    }
    if r.chance(40) {
        s += "execution_gas_chains = [777]\n";
    }
    let mut caps: Vec<String> = Vec::new();
    for t in ["T1", "T2"] {
        if r.chance(70) {
            caps.push(format!("\"{} {t}\"", 100 + r.below(3000)));
        }
    }
    if !caps.is_empty() {
        s += &format!("max = [{}]\n", caps.join(", "));
        if r.chance(40) {
            s += &format!("[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"{}m\"\n", 1 + r.below(60));
        }
    }
    if r.chance(30) {
        s += "[user_operations]\nentry_points = [\"v0.7\"]\n";
        if r.chance(50) {
            s += "unmetered_calls = true\n";
        }
    }
    if delegations && r.chance(50) {
        s += &format!("[delegations]\nmanagers = [\"{MGR}\"]\n");
        if r.chance(40) {
            s += &format!("delegators = [\"{D1}\"]\n");
        }
    }
    s
}

/// An engine key that signs nothing real (the decision core never checks signatures).
pub struct NullSigner;

impl Signer for NullSigner {
    fn sign(&self, _: &B256) -> Result<Signature, String> {
        Ok(Signature::new(U256::from(1u8), U256::from(1u8), false))
    }
}

/// One event of a sequence.
#[derive(Debug, Clone)]
pub enum Event {
    Sign(Req),
    Approve(u64),
    /// The owner denies a held request.
    Deny(u64),
    Update(String),
    Revoke,
    /// Ask again with the stamp of an earlier ask (its index).
    Reask(usize),
}

/// Where the engine's and the model's ledgers (every asset, every period) or holdings (by
/// chain and token, priced or not) differ at `clock`.
fn compare_state(engine: &Machine, model: &Model, clock: u64) -> Option<String> {
    use bridle_common::ledger::{LedgerKey, PERIODS};
    let t = engine.time_at(clock);
    let mut keys: Vec<LedgerKey> = engine.counters().ledger.keys().collect();
    for a in model.ledger_assets() {
        let k = match a {
            Ledger::Native => LedgerKey::Native,
            Ledger::Token(addr) => LedgerKey::Token(addr),
            Ledger::Gas => LedgerKey::GasCost,
            Ledger::Usd => LedgerKey::Usd,
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    for k in keys {
        let asset = match k {
            LedgerKey::Native => Ledger::Native,
            LedgerKey::Token(addr) => Ledger::Token(addr),
            LedgerKey::GasCost => Ledger::Gas,
            LedgerKey::Usd => Ledger::Usd,
        };
        for period in PERIODS {
            let e = engine.counters().ledger.spent(k, period, engine.facts.anchor, t);
            let m = model.spent_in(asset, period, clock);
            if e != m {
                return Some(format!("ledger {k:?} {period:?}: engine {e}, model {m}"));
            }
        }
    }
    if let Some(m) = model.holdings() {
        let e = engine.holdings_at(clock);
        if e != m {
            return Some(format!("holdings: engine {e:?}, model {m:?}"));
        }
    }
    None
}

/// Mostly small amounts, sometimes whole units of a 3-, 6- or 18-decimal token and the
/// largest, so that caps written in units bind (a review of 2026-12-05: amounts of at most
/// 2 500 base units never reached most caps).
fn amount(r: &mut Rng) -> U256 {
    match r.below(10) {
        0 => U256::from(*r.pick(&[1_000u64, 250_000, 1_000_000, 30_000_000, 10u64.pow(9), 10u64.pow(18)])),
        1 if r.chance(10) => U256::MAX,
        _ => U256::from(*r.pick(&[0u64, 1, 5, 50, 100, 300, 999, 1000, 2500])),
    }
}

/// A random request, mostly on one of `chains` (the policy's); never a redemption.
pub fn random_req(r: &mut Rng, nonces: &mut HashMap<u64, u64>, clock: u64, chains: &[u64]) -> Req {
    random_req_with(r, nonces, clock, chains, false)
}

/// A random request; with `delegations`, sometimes an ERC-7710 redemption whose entries are
/// random calls held by random delegators (or the session), now and then calling the
/// delegator itself or a manager.
pub fn random_req_with(
    r: &mut Rng,
    nonces: &mut HashMap<u64, u64>,
    clock: u64,
    chains: &[u64],
    delegations: bool,
) -> Req {
    if delegations && r.chance(15) {
        let entries = (0..1 + r.below(3))
            .map(|_| {
                let root = *r.pick(&[Some(D1), Some(D1), Some(D2), None]);
                let calls = (0..1 + r.below(3))
                    .map(|_| match (random_req_with(r, nonces, clock, chains, false), r.below(12)) {
                        (_, 0) => (root.unwrap_or(OTHER), U256::ZERO, Bytes::from(vec![0xb6, 0x1d, 0x27, 0xf6])),
                        (_, 1) => (MGR, U256::ZERO, Bytes::new()),
                        (Req::Tx { to: Some(to), value, data, .. }, _) => (to, value, data),
                        _ => {
                            (TOK1, U256::ZERO, Bytes::from(transferCall { to: ALICE, amount: amount(r) }.abi_encode()))
                        }
                    })
                    .collect();
                (root, calls)
            })
            .collect();
        let chain = if r.chance(90) && !chains.is_empty() { *r.pick(chains) } else { 5 };
        let next = nonces.entry(chain).or_insert(0);
        let nonce = *next;
        *next += 1;
        return Req::Redeem {
            chain_id: chain,
            nonce,
            manager: *r.pick(&[MGR, MGR, MGR, MGR2]),
            entries,
            // Either side of approvals.revoke_gas (RULES §6: below it, a revocation may run
            // out of gas and force nothing).
            gas_limit: 21_000 + r.below(200_000),
            max_fee_per_gas: r.below(12) as u128,
            max_priority_fee_per_gas: 0,
        };
    }
    let chain = if r.chance(85) && !chains.is_empty() { *r.pick(chains) } else { *r.pick(&[1u64, 10, 31337, 5]) };
    let next = nonces.entry(chain).or_insert(0);
    let nonce = match r.below(10) {
        0 => next.saturating_sub(1 + r.below(2)), // reuse
        1 => *next + 1 + r.below(2),              // gap
        _ => *next,
    };
    if nonce >= *next {
        *next = nonce + 1;
    }
    let token = *r.pick(&[TOK1, TOK1, TOK1, TOK1, TOK1, TOK2, TOK2, OTHER, ALICE]);
    let who = *r.pick(&[OWNER, OWNER, ALICE, ALICE, S1, S2, OTHER]);
    let a = amount(r);
    let (to, value, data): (Address, U256, Vec<u8>) = match r.below(14) {
        0 | 1 | 2 | 12 | 13 => (token, U256::ZERO, transferCall { to: who, amount: a }.abi_encode()),
        // Revocations often: whether they force a reset is where the registry is subtle.
        3 | 4 => {
            let amount = if r.chance(35) { U256::ZERO } else { a };
            (token, U256::ZERO, approveCall { spender: *r.pick(&[S1, S2, OTHER]), amount }.abi_encode())
        }
        5 => (token, U256::ZERO, increaseAllowanceCall { spender: *r.pick(&[S1, S2]), added: a }.abi_encode()),
        6 => (token, U256::ZERO, transferFromCall { from: OTHER, to: who, amount: a }.abi_encode()),
        7 => (token, U256::ZERO, transferAndCallCall { to: who, amount: a, data: Bytes::new() }.abi_encode()),
        8 => (token, U256::ZERO, pushCall { to: who, amount: a }.abi_encode()),
        9 => (who, amount(r), vec![]),
        10 => (*r.pick(&[ALICE, OTHER, TOK1]), amount(r), vec![0xde, 0xad, 0xbe, 0xef]),
        _ => (token, U256::ZERO, vec![0x12, 0x34]),
    };
    match r.below(10) {
        0 => Req::Permit {
            chain_id: chain,
            token: *r.pick(&[TOK1, TOK2]),
            spender: *r.pick(&[S1, S2, OTHER]),
            value: amount(r),
            deadline: clock.saturating_sub(30) + r.below(4000),
        },
        1 => {
            // Approvals often (the registry's subtle part), and any call a transaction makes
            // (routers, junk selectors, value transfers, unmetered token functions): run as
            // the account, only metered ones pass unless the policy vouches for it.
            let calls: Vec<(Address, U256, Bytes)> = (0..1 + r.below(4))
                .map(|_| match random_req_with(r, nonces, clock, chains, false) {
                    Req::Tx { to: Some(to), value, data, .. } if r.chance(50) => (to, value, data),
                    _ => (
                        *r.pick(&[TOK1, TOK2]),
                        U256::ZERO,
                        Bytes::from(approveCall { spender: *r.pick(&[S1, S2]), amount: amount(r) }.abi_encode()),
                    ),
                })
                .collect();
            Req::UserOp {
                chain_id: chain,
                entry_point: ENTRY_POINT_V07,
                sender: SCA,
                nonce: U256::from(r.below(3)),
                calls,
                gas: 21_000 + r.below(300_000),
                max_fee_per_gas: r.below(12) as u128,
                max_priority_fee_per_gas: 0,
            }
        }
        _ => Req::Tx {
            chain_id: chain,
            nonce,
            to: Some(to),
            value,
            data: Bytes::from(data),
            // Either side of approvals.revoke_gas (RULES §6: below it, a revocation may run
            // out of gas and force nothing).
            gas_limit: 21_000 + r.below(200_000),
            max_fee_per_gas: r.below(12) as u128,
            max_priority_fee_per_gas: 0,
        },
    }
}

/// The engine's payload for a model request (a permit's owner is [`ACCOUNT`]).
pub fn payload(req: &Req) -> SignPayload {
    payload_for(req, ACCOUNT)
}

/// The engine's payload for a model request of the session `account`.
pub fn payload_for(req: &Req, account: Address) -> SignPayload {
    match req {
        Req::Tx { chain_id, nonce, to, value, data, gas_limit, max_fee_per_gas, max_priority_fee_per_gas } => {
            SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
                chain_id: *chain_id,
                nonce: *nonce,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                gas_limit: *gas_limit,
                to: *to,
                value: *value,
                data: data.clone(),
                access_list: vec![],
            }))
        }
        Req::Redeem { chain_id, nonce, manager, entries, gas_limit, max_fee_per_gas, max_priority_fee_per_gas } => {
            use bridle_common::delegation::*;
            let parts: Vec<_> = entries
                .iter()
                .map(|(root, calls)| {
                    let chain = root
                        .map(|d| Delegation {
                            delegate: account,
                            delegator: d,
                            authority: B256::repeat_byte(0xff),
                            caveats: vec![],
                            salt: U256::ZERO,
                            signature: Bytes::new(),
                        })
                        .into_iter()
                        .collect::<Vec<_>>();
                    match calls.as_slice() {
                        [(to, value, data)] => (chain, MODE_SINGLE, single_execution(*to, *value, data)),
                        _ => (chain, MODE_BATCH, batch_execution(calls)),
                    }
                })
                .collect();
            SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
                chain_id: *chain_id,
                nonce: *nonce,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                gas_limit: *gas_limit,
                to: Some(*manager),
                value: U256::ZERO,
                data: encode_redemption(&parts).into(),
                access_list: vec![],
            }))
        }
        Req::Permit { chain_id, token, spender, value, deadline } => SignPayload::TypedData(
            serde_json::json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]},
                "primaryType": "Permit",
                "domain": {"name": "Token", "version": "1", "chainId": chain_id, "verifyingContract": token},
                "message": {"owner": account, "spender": spender, "value": value.to_string(), "nonce": 0, "deadline": deadline}
            })
            .to_string(),
        ),
        Req::UserOp { chain_id, entry_point, sender, nonce, calls, gas, max_fee_per_gas, max_priority_fee_per_gas } => {
            SignPayload::UserOperation(UserOperationRequest {
                chain_id: *chain_id,
                entry_point: *entry_point,
                entry_point_version: None,
                sender: *sender,
                nonce: *nonce,
                factory: None,
                factory_data: Bytes::new(),
                init_code: None,
                call_data: encode::simple_execute_batch(calls),
                call_gas_limit: *gas as u128,
                verification_gas_limit: 0,
                pre_verification_gas: U256::ZERO,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                paymaster: None,
                paymaster_verification_gas_limit: 0,
                paymaster_post_op_gas_limit: 0,
                paymaster_data: Bytes::new(),
            })
        }
    }
}

/// What the sequences did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sequences: u64,
    pub decisions: u64,
    pub allowed: u64,
    pub denied: u64,
    pub pending: u64,
    pub skipped: u64,
    /// Asks repeated with their stamp that returned the signature again.
    pub reasked: u64,
    /// Times the engine was replaced by a replica restored from its snapshot.
    pub restored: u64,
    /// Owner denials of held requests that took effect.
    pub denied_by_owner: u64,
    /// ERC-7710 redemptions signed.
    pub redeemed: u64,
    /// Denials by code.
    pub codes: std::collections::BTreeMap<&'static str, u64>,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.sequences += o.sequences;
        self.decisions += o.decisions;
        self.allowed += o.allowed;
        self.denied += o.denied;
        self.pending += o.pending;
        self.skipped += o.skipped;
        self.reasked += o.reasked;
        self.restored += o.restored;
        self.denied_by_owner += o.denied_by_owner;
        self.redeemed += o.redeemed;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
    }
}

fn compile(text: &str, now: u64) -> Option<(Policy, CompiledPolicy)> {
    let doc = resolve_text(text, now).ok()?;
    let c = CompiledPolicy::compile(doc.clone()).ok()?;
    c.check_lifetime(now).ok()?;
    Some((doc, c))
}

/// Run sequence `seed`; `Err` describes the first disagreement.
pub fn run_sequence(seed: u64, steps: usize) -> Result<Stats, String> {
    run(Rng::new(seed), seed, steps)
}

/// Run one sequence drawing its choices from `r` (`seed` only names it in reports).
pub fn run(r: Rng, seed: u64, steps: usize) -> Result<Stats, String> {
    run_gen(r, seed, steps, true, true)
}

/// [`run`]; without `denials` the owner never denies a held request, and the choices drawn
/// are those of the generator before `deny_pending` existed (for seeds kept as regressions).
pub fn run_with(r: Rng, seed: u64, steps: usize, denials: bool) -> Result<Stats, String> {
    run_gen(r, seed, steps, denials, false)
}

/// [`run_with`]; with `delegations`, policies may list delegation managers and requests
/// may be redemptions (RULES §5b).
pub fn run_gen(mut r: Rng, seed: u64, steps: usize, denials: bool, delegations: bool) -> Result<Stats, String> {
    let mut st = Stats { sequences: 1, ..Stats::default() };
    let created = T0 + r.below(400 * 86_400);
    let text = random_policy_with(&mut r, created, delegations);
    let Some((doc, compiled)) = compile(&text, created) else { return Ok(Stats::default()) };
    let Ok(mut model) = Model::new(&doc, created, OWNER, ACCOUNT) else { return Ok(Stats::default()) };
    let mut chains = doc.chains.clone();
    let mut engine = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), compiled, created, 60, 1 << 16);
    let mut clock = created;
    let mut nonces: HashMap<u64, u64> = HashMap::new();
    let mut pending: HashMap<u64, B256> = HashMap::new();
    // The request of each held id, for asking again after the owner decided.
    let mut held: HashMap<u64, Req> = HashMap::new();
    // Every stamped ask whose nonce was recorded: its payload, stamp, and whether it was signed.
    let mut asked: Vec<(SignPayload, Stamp, bool)> = Vec::new();
    let mut log = vec![format!("policy:\n{text}")];
    let fail = |log: &[String], what: String| Err(format!("seed {seed}: {what}\n--- sequence ---\n{}", log.join("\n")));
    let mut steps_left = steps;
    let mut i = 0;
    while steps_left > 0 {
        steps_left -= 1;
        i += 1;
        clock = match r.below(10) {
            0 => clock.saturating_sub(r.below(90)),
            1 => clock + 3600 * r.below(30),
            2 | 3 => clock + r.below(120),
            _ => clock + r.below(5),
        };
        let ev = match r.below(20) {
            0 if !pending.is_empty() => {
                let mut ids: Vec<u64> = pending.keys().copied().collect();
                ids.sort_unstable();
                let id = *r.pick(&ids);
                if denials && r.chance(30) {
                    Event::Deny(id)
                } else {
                    Event::Approve(id)
                }
            }
            1 => Event::Update(random_policy_with(&mut r, clock, delegations)),
            2 if r.chance(10) => Event::Revoke,
            3 if !asked.is_empty() => Event::Reask(r.below(asked.len() as u64) as usize),
            // The agent asks again (a fresh stamp) for a request it was told is held.
            4 if denials && !held.is_empty() && r.chance(60) => {
                let mut ids: Vec<u64> = held.keys().copied().collect();
                ids.sort_unstable();
                Event::Sign(held[r.pick(&ids)].clone())
            }
            _ => Event::Sign(random_req_with(&mut r, &mut nonces, clock, &chains, delegations)),
        };
        log.push(format!("step {i} at {clock}: {ev:?}"));
        match ev {
            Event::Sign(req) => {
                let payload = payload(&req);
                let m = model.sign(&req, clock);
                if m == Verdict::Denied(vec![MODEL_LIMIT]) {
                    st.skipped += 1;
                    return Ok(st);
                }
                let e = match prepare(&payload) {
                    Ok(prepared) => {
                        let mut nonce = [0u8; 16];
                        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                        let stamp = Stamp { nonce, timestamp: engine.time_at(clock), mac: [0; 32] };
                        let digest = prepared.stamp_digest();
                        let out = engine.sign(clock, &payload, prepared, &stamp, Some(&NullSigner));
                        // Step 1 (revoked, suspended) refuses before the nonce is recorded.
                        let recorded =
                            !matches!(&out.result, Err(d) if matches!(d.code.as_str(), "revoked" | "suspended"));
                        if recorded {
                            asked.push((payload.clone(), stamp, out.result.is_ok()));
                        }
                        (out.result.map(|_| ()), digest)
                    }
                    Err(d) => (Err(d), B256::ZERO),
                };
                log.push(format!("  engine {:?} / model {m:?}", e.0.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e.0, &m) {
                    (Ok(()), Verdict::Allowed) => {
                        st.allowed += 1;
                        st.redeemed += u64::from(matches!(req, Req::Redeem { .. }));
                    }
                    (Err(d), Verdict::Pending(id)) if d.code.as_str() == "pending_approval" => {
                        st.pending += 1;
                        pending.insert(*id, e.1);
                        held.insert(*id, req.clone());
                    }
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {
                        st.denied += 1;
                        *st.codes.entry(d.code.as_str()).or_default() += 1;
                    }
                    _ => return fail(&log, format!("step {i}: engine {:?}, model {m:?}", e.0)),
                }
            }
            Event::Reask(j) => {
                let (payload, stamp, signed) = asked[j].clone();
                let m = model.reask(signed, stamp.timestamp, clock, 60);
                let e = match prepare(&payload) {
                    Ok(prepared) => {
                        engine.sign(clock, &payload, prepared, &stamp, Some(&NullSigner)).result.map(|_| ())
                    }
                    Err(d) => Err(d),
                };
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => st.reasked += 1,
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(&log, format!("step {i} re-ask of ask {j}: engine {e:?}, model {m:?}")),
                }
            }
            Event::Approve(id) => {
                let digest = pending[&id];
                let m = model.approve(id, clock);
                let e = engine.approve(clock, digest, Some(&NullSigner)).result.map(|_| ());
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => {}
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(&log, format!("step {i} approve: engine {e:?}, model {m:?}")),
                }
            }
            Event::Deny(id) => {
                let digest = pending[&id];
                let m = model.deny(id, clock);
                let e = engine.deny(clock, digest).result.map(|_| ());
                log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
                st.decisions += 1;
                match (&e, &m) {
                    (Ok(()), Verdict::Allowed) => st.denied_by_owner += 1,
                    (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {}
                    _ => return fail(&log, format!("step {i} deny: engine {e:?}, model {m:?}")),
                }
            }
            Event::Update(text) => {
                let Some((doc, compiled)) = compile(&text, clock) else { continue };
                if Model::new(&doc, clock, OWNER, ACCOUNT).is_err() {
                    continue;
                }
                let m = model.update(&doc, clock);
                let e = engine.update_policy(clock, compiled).result.map(|_| ());
                chains = doc.chains.clone();
                log.push(format!("  policy:\n{text}\n  engine {e:?} / model {m:?}"));
                if m.is_ok() != e.is_ok() {
                    return fail(&log, format!("step {i} update: engine {e:?}, model {m:?}"));
                }
            }
            Event::Revoke => {
                model.revoke(clock);
                let _ = engine.revoke(clock, false);
                // A few more requests show it holds; the rest of the sequence would only repeat it.
                steps_left = steps_left.min(3);
            }
        }
        // Now and then the engine continues as a replica restored from its snapshot (what a
        // cluster node that catches up receives), through CBOR as on the wire.
        if r.chance(3) {
            let bytes = bridle_common::frame::to_cbor(&engine.snapshot()).map_err(|e| format!("seed {seed}: {e}"))?;
            let snap = bridle_common::frame::from_cbor(&bytes).map_err(|e| format!("seed {seed}: {e}"))?;
            let before = engine.footprint();
            engine = Machine::restore(snap).map_err(|e| format!("seed {seed} step {i}: restore: {e}"))?;
            if engine.footprint() != before {
                return fail(
                    &log,
                    format!("step {i}: footprint {before} before the snapshot, {} after", engine.footprint()),
                );
            }
            st.restored += 1;
        }
        // The same figures after every step.
        let t = engine.time_at(clock);
        let ex_e = bridle_common::policy::exposure::exposure_now(engine.policy(), &engine.counters().allowances, t).usd;
        let ex_m = model.exposure_usd(clock);
        if ex_e != ex_m {
            return fail(&log, format!("step {i}: exposure engine {ex_e}, model {ex_m}"));
        }
        if engine.counters().uses != model.uses() {
            return fail(&log, format!("step {i}: uses engine {}, model {}", engine.counters().uses, model.uses()));
        }
        // What is charged and what may be outstanding, line by line (a review of 2026-12-05:
        // only decisions, uses and the priced exposure were compared).
        if let Some(why) = compare_state(&engine, &model, clock) {
            return fail(&log, format!("step {i}: {why}"));
        }
    }
    Ok(st)
}
