//! Random policies and requests for the differential test: the choices a sequence makes.

use super::*;
use bridle_model::abi::u160_max;

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
    // Just-in-time approvals (RULES §5): consumers at the spenders, run as the account.
    let jit = delegations && r.chance(30);
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
    // Argument rules (RULES §5 "Arguments"): on the tokens' `transfer`, on the functions of
    // a contract, now and then on a wildcard target's.
    let args = delegations && r.chance(35);
    let fns = |r: &mut Rng, symbol: &str| -> String {
        if r.chance(30) {
            "[\"*\"]".into()
        } else {
            let all = [
                "transfer(address,uint256)",
                "approve(address,uint256)",
                "increaseAllowance(address,uint256)",
                "transferFrom(address,address,uint256)",
                // A function that moves nothing past the engine (only such may be named on a
                // listed token since 2026-12-07: AG-212 4.1; `push` was here).
                "decreaseAllowance(address,uint256)",
            ];
            let mut v: Vec<&str> = all[1..].iter().copied().filter(|_| r.chance(60)).collect();
            if args && r.chance(60) {
                let mut items: Vec<String> = v.iter().map(|f| format!("{f:?}")).collect();
                items.push(transfer_entry(r, symbol));
                return format!("[{}]", items.join(", "));
            }
            v.push(all[0]);
            format!("{v:?}")
        }
    };
    if r.chance(95) {
        s += &format!("[[calls]]\ntarget = \"T1\"\nfunctions = {}\n", fns(r, "T1"));
    }
    if r.chance(70) {
        s += &format!("[[calls]]\ntarget = \"T2\"\nfunctions = {}\n", fns(r, "T2"));
    }
    if r.chance(70) {
        s += &format!("[[calls]]\ntarget = \"{ALICE}\"\nfunctions = [\"receive()\"]\n");
    }
    if args && r.chance(85) {
        s += &format!("[[calls]]\ntarget = \"{ROUTER}\"\nfunctions = {}\n", arg_entries(r));
    }
    if wildcard {
        if args && r.chance(40) {
            s += &format!("[[calls]]\ntarget = \"*\"\nfunctions = {}\n", arg_entries(r));
        } else {
            s += "[[calls]]\ntarget = \"*\"\nfunctions = [\"*\"]\n";
        }
    }
    if jit {
        for spender in [S1, S2] {
            s += &format!("[[calls]]\ntarget = \"{spender}\"\nfunctions = [\"{JIT_SWAP}\", \"{JIT_DEPOSIT}\"]\n");
        }
    }
    // Permit2 contracts (RULES §5): only `approve` is metered; another function passes only
    // when a rule for that contract names it.
    if delegations && r.chance(50) {
        let target = *r.pick(&[PERMIT2, PERMIT2, P2B]);
        let fns = r.pick(&[
            "[\"*\"]",
            "[\"approve(address,address,uint160,uint48)\"]",
            "[\"approve(address token, address spender, uint160 amount, uint48 expiration)\", \"transferFrom(address,address,uint160,address)\"]",
            "[\"transferFrom(address,address,uint160,address)\"]",
        ]);
        s += &format!("[[calls]]\ntarget = \"{target}\"\nfunctions = {fns}\n");
    }
    for _ in 0..r.below(3) {
        s += &format!("[[rate_limits]]\nmax = {}\nwindow = \"{}s\"\n", 2 + r.below(12), 1 + r.below(7200));
    }
    s += "[gas]\n";
    if r.chance(30) {
        s += &format!("max_fee_per_gas = \"{} wei\"\n", 10 + r.below(40));
    }
    // A priority fee cap: a legacy transaction's gas price is both fees (RULES §4).
    if delegations && r.chance(15) {
        s += &format!("max_priority_fee_per_gas = \"{} wei\"\n", 2 + r.below(10));
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
    if jit {
        s += &format!("jit_tolerance = \"{}\"\n", r.pick(&["0%", "0.5%", "1%", "10%"]));
        if r.chance(30) {
            s += "jit_only = true\n";
        }
        // The swap's amount in (0.4) naming its token (0.0), a deposit's amount, and, now
        // and then first, the same swap read at its minimum out (0.5): the first rule whose
        // function the call is decides.
        let mut rules = vec![
            format!("{{ signature = \"{JIT_SWAP}\", amount_arg = \"0.4\", token_arg = \"0.0\" }}"),
            format!("{{ signature = \"{JIT_DEPOSIT}\", amount_arg = \"0\" }}"),
        ];
        if r.chance(30) {
            rules.insert(0, format!("{{ signature = \"{JIT_SWAP}\", amount_arg = \"0.5\" }}"));
        }
        s += &format!("jit = [{}]\n", rules.join(", "));
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
            // Now and then the first covers T1 only and a second every token: the first
            // rule covering a token decides.
            if delegations && r.chance(20) && caps.iter().any(|c| c.ends_with(" T1\"")) {
                s += "tokens = [\"T1\"]\n";
                s += &format!("[[permits]]\nkind = \"eip2612\"\nmax_deadline = \"{}m\"\n", 1 + r.below(60));
            }
        }
        // Permit2 messages: for the canonical contract or another, every listed token or
        // only T1 (when it has a cap); now and then a second rule, so that which rule
        // decides matters.
        for _ in 0..if delegations && r.chance(50) { 1 + r.below(2) } else { 0 } {
            s += &format!("[[permits]]\nkind = \"permit2\"\nmax_deadline = \"{}m\"\n", 1 + r.below(90));
            if r.chance(30) {
                s += &format!("permit2 = \"{P2B}\"\n");
            }
            if r.chance(30) && caps.iter().any(|c| c.ends_with(" T1\"")) {
                s += "tokens = [\"T1\"]\n";
            }
        }
    }
    if r.chance(30) || (jit && r.chance(70)) {
        s += "[user_operations]\nentry_points = [\"v0.7\"]\n";
        if r.chance(50) || (jit && r.chance(60)) {
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

/// Whether `req` calls a Permit2 contract's `approve` with a non-zero amount.
pub(super) fn calls_permit2_approve(req: &Req) -> bool {
    let hit = |to: &Address, data: &Bytes| {
        (*to == PERMIT2 || *to == P2B)
            && data.get(..4) == Some(&bridle_model::abi::sel("approve(address,address,uint160,uint48)")[..])
            && data.get(68..100).is_some_and(|w| w.iter().any(|&b| b != 0))
    };
    match req {
        Req::Tx { to: Some(to), data, .. } => hit(to, data),
        Req::UserOp { calls, .. } => calls.iter().any(|(to, _, data)| hit(to, data)),
        Req::Redeem { entries, .. } => entries.iter().flat_map(|e| &e.1).any(|(to, _, data)| hit(to, data)),
        _ => false,
    }
}

/// Whether `req` calls one of the just-in-time consumers.
pub(super) fn calls_a_jit_consumer(req: &Req) -> bool {
    let hit = |data: &Bytes| {
        [JIT_SWAP, JIT_DEPOSIT].iter().any(|sig| data.get(..4) == Some(&bridle_model::abi::sel(sig)[..]))
    };
    match req {
        Req::UserOp { calls, .. } => calls.iter().any(|(_, _, d)| hit(d)),
        Req::Redeem { entries, .. } => entries.iter().flat_map(|e| &e.1).any(|(_, _, d)| hit(d)),
        _ => false,
    }
}

/// The consumers just-in-time rules of random policies name.
pub const JIT_SWAP: &str = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))";
pub const JIT_DEPOSIT: &str = "deposit(uint256)";

/// An approval and the call after it that may consume it (RULES §5, just-in-time): an
/// `approve` or `increaseAllowance` of about what the call consumes (exactly, within or
/// just past the tolerances, twice), to the call's target or not, the call naming the token
/// or not, encoded canonically or not; now and then a revocation after them.
fn jit_pair(r: &mut Rng) -> Vec<(Address, U256, Bytes)> {
    let token = *r.pick(&[TOK1, TOK1, TOK2]);
    let spender = *r.pick(&[S1, S1, S2]);
    let consumed = if r.chance(80) { U256::from(*r.pick(&[1u64, 999, 1000, 20_000, 10u64.pow(9)])) } else { amount(r) };
    let bps = *r.pick(&[0u64, 50, 100, 1000]);
    let within = consumed.saturating_mul(U256::from(10_000 + bps)) / U256::from(10_000u32);
    let granted = match r.below(6) {
        0 => consumed,
        1 => within,
        2 => within.saturating_add(U256::from(1u8)),
        3 => consumed.saturating_mul(U256::from(2u8)),
        _ => consumed.saturating_sub(U256::from(r.below(2))),
    };
    let grant = if r.chance(30) {
        increaseAllowanceCall { spender, added: granted }.abi_encode()
    } else {
        approveCall { spender, amount: granted }.abi_encode()
    };
    let named = if r.chance(85) { token } else { OTHER };
    let fee = if r.chance(90) { U256::from(500u32) } else { U256::from(1u32) << 24 };
    let consumer = match r.below(3) {
        0 => encode_call(JIT_DEPOSIT, &[consumed]),
        _ => encode_call(
            JIT_SWAP,
            &[addr_word(named), addr_word(OTHER), fee, addr_word(SCA), consumed, U256::from(r.below(3)), U256::ZERO],
        ),
    };
    let target = if r.chance(90) { spender } else { *r.pick(&[S1, S2]) };
    let mut calls = vec![(token, U256::ZERO, Bytes::from(grant)), (target, U256::ZERO, Bytes::from(consumer))];
    if r.chance(30) {
        calls.push((token, U256::ZERO, Bytes::from(approveCall { spender, amount: U256::ZERO }.abi_encode())));
    }
    calls
}

/// An amount a Permit2 allowance can hold (a uint160): [`amount`]'s, or Permit2's
/// unlimited, or just below it.
fn amount160(r: &mut Rng) -> U256 {
    match r.below(12) {
        0 => u160_max(),
        1 => u160_max() - U256::from(1u8),
        _ => amount(r).min(u160_max()),
    }
}

/// A Permit2 expiration (a uint48) around `clock`: 0 (Permit2: the block it is used in),
/// already past, soon, later, or the largest.
fn expiration(r: &mut Rng, clock: u64) -> u64 {
    match r.below(8) {
        0 => 0,
        1 => clock.saturating_sub(r.below(300)),
        2 => (1 << 48) - 1,
        3 => clock + r.below(120),
        _ => clock + r.below(7200),
    }
}

/// A call to a Permit2 contract: mostly its `approve`, sometimes encoded with an amount
/// past 160 bits or an expiration past 48, else its `transferFrom` or an ERC-20 selector
/// it does not have.
fn permit2_call(r: &mut Rng, clock: u64) -> (Address, U256, Bytes) {
    let to = *r.pick(&[PERMIT2, PERMIT2, P2B]);
    let token = *r.pick(&[TOK1, TOK1, TOK2, OTHER]);
    let spender = *r.pick(&[S1, S2, S2, OTHER]);
    let sig = "approve(address,address,uint160,uint48)";
    let data = match r.below(12) {
        0 => encode_call(sig, &[addr_word(token), addr_word(spender), u160_max() + U256::from(1u8), U256::ZERO]),
        1 => encode_call(sig, &[addr_word(token), addr_word(spender), U256::from(5u8), U256::from(1u64 << 48)]),
        2 => encode_call(
            "transferFrom(address,address,uint160,address)",
            &[addr_word(ACCOUNT), addr_word(ALICE), U256::from(5u8), addr_word(token)],
        ),
        3 => approveCall { spender, amount: amount(r) }.abi_encode(),
        _ => {
            let a = if r.chance(30) { U256::ZERO } else { amount160(r) };
            let e = if a.is_zero() && r.chance(70) { 0 } else { expiration(r, clock) };
            encode_call(sig, &[addr_word(token), addr_word(spender), a, U256::from(e)])
        }
    };
    let value = if r.chance(5) { U256::from(1u8) } else { U256::ZERO };
    (to, value, Bytes::from(data))
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
                        (_, 2) => permit2_call(r, clock),
                        (Req::Tx { to: Some(to), value, data, .. }, _) => (to, value, data),
                        _ => {
                            (TOK1, U256::ZERO, Bytes::from(transferCall { to: ALICE, amount: amount(r) }.abi_encode()))
                        }
                    })
                    .collect();
                (root, if r.chance(20) { jit_pair(r) } else { calls })
            })
            .collect();
        // Now and then a just-in-time pair split over two entries: one delegator's approval,
        // then the consumer run as the same delegator or as another.
        let entries: Vec<bridle_model::RedeemEntry> = if r.chance(15) {
            let mut pair = jit_pair(r);
            let consumer = pair.remove(1);
            let first = *r.pick(&[Some(D1), Some(D2)]);
            let second = if r.chance(50) { first } else { *r.pick(&[Some(D1), Some(D2), None]) };
            vec![(first, pair), (second, vec![consumer])]
        } else {
            entries
        };
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
    if delegations && r.chance(10) {
        let (to, value, data) = permit2_call(r, clock);
        return Req::Tx {
            chain_id: chain,
            nonce,
            to: Some(to),
            value,
            data,
            gas_limit: 21_000 + r.below(200_000),
            max_fee_per_gas: r.below(12) as u128,
            max_priority_fee_per_gas: 0,
            access_list: vec![],
        };
    }
    // Now and then a call of a function argument rules are written for.
    let (to, value, data): (Address, U256, Vec<u8>) = if delegations && r.chance(12) {
        let to = *r.pick(&[ROUTER, ROUTER, ROUTER, OTHER]);
        (to, if r.chance(10) { U256::from(1u8) } else { U256::ZERO }, arg_call(r, true))
    } else {
        match r.below(14) {
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
        }
    };
    match r.below(10) {
        0 => Req::Permit {
            chain_id: chain,
            token: *r.pick(&[TOK1, TOK2]),
            spender: *r.pick(&[S1, S2, OTHER]),
            value: amount(r),
            deadline: clock.saturating_sub(30) + r.below(4000),
        },
        // Permit2 messages (RULES §5, §6): allowances until their expiration, floating
        // until the signature's deadline; one-shot transfers until theirs.
        2 if delegations => {
            let batch = r.chance(40);
            let details = (0..if batch { 1 + r.below(3) } else { 1 })
                .map(|_| (*r.pick(&[TOK1, TOK1, TOK2, OTHER]), amount160(r), expiration(r, clock)))
                .collect();
            Req::Permit2 {
                chain_id: chain,
                contract: *r.pick(&[PERMIT2, PERMIT2, P2B]),
                spender: *r.pick(&[S1, S2, S2, OTHER]),
                details,
                sig_deadline: clock.saturating_sub(30) + r.below(4000),
                batch,
            }
        }
        3 if delegations => {
            let batch = r.chance(40);
            let permitted = (0..if batch { 1 + r.below(3) } else { 1 })
                .map(|_| (*r.pick(&[TOK1, TOK1, TOK2, OTHER]), amount(r)))
                .collect();
            Req::Permit2Transfer {
                chain_id: chain,
                contract: *r.pick(&[PERMIT2, PERMIT2, P2B]),
                spender: *r.pick(&[S1, S2, S2, OTHER]),
                permitted,
                deadline: clock.saturating_sub(30) + r.below(4000),
                batch,
            }
        }
        // A just-in-time pair alone (RULES §5): the consumer's bound is where it binds.
        4 if delegations => Req::UserOp {
            chain_id: chain,
            entry_point: ENTRY_POINT_V07,
            sender: SCA,
            nonce: U256::from(r.below(3)),
            calls: jit_pair(r),
            gas: 21_000 + r.below(100_000),
            max_fee_per_gas: r.below(12) as u128,
            max_priority_fee_per_gas: 0,
        },
        1 => {
            // Approvals often (the registry's subtle part), and any call a transaction makes
            // (routers, junk selectors, value transfers, unmetered token functions): run as
            // the account, only metered ones pass unless the policy vouches for it.
            let mut calls: Vec<(Address, U256, Bytes)> = (0..1 + r.below(4))
                .map(|_| match random_req_with(r, nonces, clock, chains, false) {
                    _ if delegations && r.chance(15) => permit2_call(r, clock),
                    _ if delegations && r.chance(10) => (ROUTER, U256::ZERO, Bytes::from(arg_call(r, false))),
                    Req::Tx { to: Some(to), value, data, .. } if r.chance(50) => (to, value, data),
                    _ => (
                        *r.pick(&[TOK1, TOK2]),
                        U256::ZERO,
                        Bytes::from(approveCall { spender: *r.pick(&[S1, S2]), amount: amount(r) }.abi_encode()),
                    ),
                })
                .collect();
            if delegations && r.chance(40) {
                let at = r.below(calls.len() as u64 + 1) as usize;
                let pair = jit_pair(r);
                calls.splice(at..at, pair);
            }
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
            access_list: vec![],
        },
    }
}
