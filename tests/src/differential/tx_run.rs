//! Transactions of every shape where their shape decides (RULES §4, §6): approvals,
//! revocations and transfers of two listed tokens, each a legacy transaction, an EIP-1559
//! one with an access list or a plain one, their gas limits mostly at the revoke-gas
//! boundary, now and then at a nonce already signed; now and then an EIP-7702 transaction.
//! Every verdict, the exposure, the uses, the ledger and the holdings compared after every
//! step: whether a revocation may run out of gas shows in what may be outstanding.

use super::*;

/// A policy for [`run_tx_shapes`]: two capped tokens, two spenders, gas caps and limits
/// now and then, `approvals.revoke_gas` explicit or not (its value, or the default 100 000).
fn shapes_policy(r: &mut Rng, created: u64) -> (String, u64) {
    let mut s = format!("name = \"shapes\"\nchains = {:?}\n", r.pick(&[vec![1u64], vec![1, 31_337], vec![1, 42_161]]));
    s += &format!("valid_until = {}\n", created + 86_400);
    if r.chance(60) {
        s += "prices = { T1 = \"1\", T2 = \"2\", ETH = \"3\" }\n";
        if r.chance(60) {
            s += &format!("exposure_ceiling = \"{} USD\"\n", 50 + r.below(1_500));
        }
    }
    s += &format!("[tokens]\nT1 = {{ address = \"{TOK1}\", decimals = 0 }}\n");
    s += &format!("T2 = {{ address = \"{TOK2}\", decimals = 0 }}\n");
    for t in ["T1", "T2"] {
        s += &format!("[[calls]]\ntarget = \"{t}\"\nfunctions = [\"*\"]\n");
    }
    s += &format!("[[calls]]\ntarget = \"{ALICE}\"\nfunctions = [\"receive()\"]\n");
    let revoke_gas = r.chance(60).then(|| 60_000 + r.below(140_001));
    let rg = revoke_gas.unwrap_or(100_000);
    s += "[gas]\n";
    if r.chance(30) {
        s += &format!("max_fee_per_gas = \"{} wei\"\n", 5 + r.below(10));
    }
    if r.chance(30) {
        s += &format!("max_priority_fee_per_gas = \"{} wei\"\n", 2 + r.below(10));
    }
    if r.chance(15) {
        s += &format!("max_gas_limit = {}\n", rg + r.below(200_000));
    }
    if r.chance(30) {
        s += "count_in_native = true\n";
    }
    if r.chance(30) {
        s += &format!("[[gas.limits]]\nmax = \"{} wei\"\nper = \"hour\"\n", r.below(30_000_000));
    }
    s += &format!("[approvals]\nspenders = [\"{S1}\", \"{S2}\"]\n");
    if let Some(g) = revoke_gas {
        s += &format!("revoke_gas = {g}\n");
    }
    s += &format!("max = [\"{} T1\", \"{} T2\"]\n", 100 + r.below(1_000), 100 + r.below(1_000));
    (s, rg)
}

/// A transaction of a random shape (legacy 40 %, with an access list 45 %, plain 15 %)
/// making `(to, value, data)`, its gas limit drawn by [`gas_near`].
pub fn shaped_tx(r: &mut Rng, chain_id: u64, nonce: u64, call: (Address, U256, Bytes), revoke_gas: u64) -> Req {
    let (to, value, data) = call;
    let to = Some(to);
    let otherwise = 21_000 + r.below(200_000);
    let fee = r.below(12) as u128;
    match r.below(20) {
        0..=7 => {
            let gas_limit = gas_near(r, revoke_gas, 0, otherwise);
            let gas_price = if r.chance(80) { fee } else { r.below(60) as u128 };
            Req::Legacy { chain_id, nonce, to, value, data, gas_limit, gas_price }
        }
        n => {
            let access_list = if n < 17 { access_list(r) } else { Vec::new() };
            let upfront = bridle_model::access_list_cost(&access_list) as u64;
            Req::Tx {
                chain_id,
                nonce,
                to,
                value,
                data,
                gas_limit: gas_near(r, revoke_gas, upfront, otherwise),
                max_fee_per_gas: fee,
                max_priority_fee_per_gas: if r.chance(30) { r.below(fee as u64 + 1) as u128 } else { 0 },
                access_list,
            }
        }
    }
}

/// One policy and up to `steps` requests ([`shapes_policy`], [`shaped_tx`]); `Err`
/// describes the first disagreement. Ends early when the model reaches its limit.
pub fn run_tx_shapes(seed: u64, steps: usize) -> Result<Stats, String> {
    let mut r = Rng::new(seed);
    let created = T0 + r.below(400 * 86_400);
    let (text, rg) = shapes_policy(&mut r, created);
    let Some((doc, compiled)) = compile(&text, created) else { return Err(format!("seed {seed}: {text}")) };
    let mut model = Model::new(&doc, created, OWNER, ACCOUNT).map_err(|e| format!("seed {seed}: {e}\n{text}"))?;
    let mut engine = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), compiled, created, 60, 1 << 16);
    let mut st = Stats { sequences: 1, ..Stats::default() };
    let mut log = vec![format!("policy:\n{text}")];
    let fail = |log: &[String], what: String| Err(format!("seed {seed}: {what}\n--- sequence ---\n{}", log.join("\n")));
    let mut clock = created;
    let mut next: HashMap<u64, u64> = HashMap::new();
    for i in 0..steps {
        clock += r.below(5);
        let chain = *r.pick(&doc.chains);
        let req = if r.chance(4) {
            random_eip7702(&mut r, &doc.chains)
        } else {
            let n = next.entry(chain).or_insert(0);
            let nonce = match r.below(20) {
                0 | 1 => n.saturating_sub(1), // a replacement
                2 => *n + 1,                  // a gap
                _ => *n,
            };
            *n = (*n).max(nonce + 1);
            let token = *r.pick(&[TOK1, TOK1, TOK2]);
            let spender = *r.pick(&[S1, S2]);
            let a = U256::from(*r.pick(&[1u64, 5, 50, 300]));
            let call = match r.below(20) {
                0..=6 => (token, U256::ZERO, approveCall { spender, amount: a }.abi_encode().into()),
                7..=13 => (token, U256::ZERO, approveCall { spender, amount: U256::ZERO }.abi_encode().into()),
                14 | 15 => (token, U256::ZERO, increaseAllowanceCall { spender, added: a }.abi_encode().into()),
                16 | 17 => (token, U256::ZERO, transferCall { to: ALICE, amount: a }.abi_encode().into()),
                _ => (ALICE, U256::from(r.below(3)), Bytes::new()),
            };
            shaped_tx(&mut r, chain, nonce, call, rg)
        };
        log.push(format!("step {i} at {clock}: {req:?}"));
        let payload = payload(&req);
        let m = model.sign(&req, clock);
        if m == Verdict::Denied(vec![MODEL_LIMIT]) {
            st.skipped += 1;
            return Ok(st);
        }
        let (e, _) = engine_decides(&mut engine, &payload, clock, i as u64 + 1);
        log.push(format!("  engine {:?} / model {m:?}", e.as_ref().map_err(|d| d.to_string())));
        st.decisions += 1;
        match (&e, &m) {
            (Ok(()), Verdict::Allowed) => {
                st.allowed += 1;
                st.count_shape(&req, rg);
            }
            (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {
                st.denied += 1;
                *st.codes.entry(d.code.as_str()).or_default() += 1;
                st.eip7702_refused += u64::from(matches!(req, Req::Eip7702 { .. }));
            }
            _ => return fail(&log, format!("step {i}: engine {e:?}, model {m:?}")),
        }
        if let Some(why) = compare_after_step(&engine, &model, clock) {
            return fail(&log, format!("step {i}: {why}"));
        }
    }
    Ok(st)
}
