//! Argument rules call by call: a policy of random argument rules on [`ROUTER`] (and on a
//! token's `transfer`), and calls of its functions, canonical or not, decided by the engine
//! and by the model. Many more argument decisions per second than whole sequences make.

use super::*;

/// What [`run_arg_calls`] saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct ArgStats {
    pub signed: u64,
    pub rejected: u64,
    /// Refused for another reason (a failing entry and no other, `selector_not_allowed`…).
    pub other: u64,
}

impl std::ops::AddAssign for ArgStats {
    fn add_assign(&mut self, o: ArgStats) {
        self.signed += o.signed;
        self.rejected += o.rejected;
        self.other += o.other;
    }
}

/// One policy with argument rules and `calls` calls of its functions; `Err` describes the
/// first disagreement.
pub fn run_arg_calls(seed: u64, calls: usize) -> Result<ArgStats, String> {
    let mut r = Rng::new(seed);
    let created = T0 + r.below(400 * 86_400);
    let mut text = format!(
        "name = \"args\"\nchains = [1]\nvalid_until = {}\n[tokens]\nT1 = {{ address = \"{TOK1}\", decimals = 2 }}\n",
        created + 86_400
    );
    text += &format!("[[calls]]\ntarget = \"{ROUTER}\"\nfunctions = {}\n", arg_entries(&mut r));
    if r.chance(50) {
        text += &format!("[[calls]]\ntarget = \"T1\"\nfunctions = [{}]\n", transfer_entry(&mut r, "T1"));
    }
    // User operations of a smart account: `$account` is still the session (AMBIGUITIES 25).
    if r.chance(50) {
        text += "[user_operations]\nentry_points = [\"v0.7\"]\nunmetered_calls = true\n";
    }
    let Some((doc, compiled)) = compile(&text, created) else { return Err(format!("seed {seed}: {text}")) };
    let mut model = Model::new(&doc, created, OWNER, ACCOUNT).map_err(|e| format!("seed {seed}: {e}\n{text}"))?;
    let mut engine = Machine::new(ACCOUNT, OWNER, Address::repeat_byte(0xa9), compiled, created, 60, 1 << 16);
    let mut st = ArgStats::default();
    let call = |r: &mut Rng, big: bool| {
        if r.chance(80) {
            (ROUTER, U256::ZERO, Bytes::from(arg_call(r, big)))
        } else {
            let a = U256::from(*r.pick(&[0u64, 1, 5, 100, 500, 1000, 1001]));
            let who = *r.pick(&[OWNER, ACCOUNT, ALICE, OTHER, SCA, TOK1]);
            (TOK1, U256::ZERO, Bytes::from(transferCall { to: who, amount: a }.abi_encode()))
        }
    };
    for i in 0..calls {
        let req = if r.chance(25) {
            Req::UserOp {
                chain_id: 1,
                entry_point: ENTRY_POINT_V07,
                sender: SCA,
                nonce: U256::from(i),
                calls: (0..1 + r.below(2)).map(|_| call(&mut r, false)).collect(),
                gas: 200_000,
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 0,
            }
        } else {
            let (to, value, data) = call(&mut r, true);
            Req::Tx {
                chain_id: 1,
                nonce: i as u64,
                to: Some(to),
                value,
                data,
                gas_limit: 200_000,
                max_fee_per_gas: 1,
                max_priority_fee_per_gas: 0,
                access_list: vec![],
            }
        };
        let clock = created + i as u64;
        let payload = payload(&req);
        let m = model.sign(&req, clock);
        let e = match prepare(&payload) {
            Ok(prepared) => {
                let mut nonce = [0u8; 16];
                nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let stamp = Stamp { nonce, timestamp: engine.time_at(clock), mac: [0; 32] };
                engine.sign(clock, &payload, prepared, &stamp, Some(&NullSigner)).result.map(|_| ())
            }
            Err(d) => Err(d),
        };
        match (&e, &m) {
            (Ok(()), Verdict::Allowed) => st.signed += 1,
            (Err(d), Verdict::Denied(codes)) if codes.contains(&d.code.as_str()) => {
                if d.code.as_str() == "argument_rejected" {
                    st.rejected += 1;
                } else {
                    st.other += 1;
                }
            }
            _ => {
                return Err(format!(
                    "seed {seed} call {i}: engine {e:?}, model {m:?}\npolicy:\n{text}\nrequest: {req:?}"
                ))
            }
        }
    }
    Ok(st)
}
