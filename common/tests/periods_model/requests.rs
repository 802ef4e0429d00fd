// ---------------------------------------------------------------- requests

#[derive(Clone, Debug)]
enum Req {
    /// One call: (chain, to, value, token amount if a transfer to `to`), gas limit, fee.
    Tx {
        chain: u64,
        nonce: u64,
        to: Address,
        value: U256,
        transfer: Option<U256>,
        gas: u64,
        fee: u128,
    },
    UserOp {
        chain: u64,
        nonce: u64,
        /// (to, value, transfer amount)
        calls: Vec<(Address, U256, Option<U256>)>,
        /// call, verification, pre-verification, paymaster verification, post-op
        gas: [u64; 5],
        fee: u128,
        paymaster: bool,
    },
    Permit {
        chain: u64,
        value: U256,
        deadline: u64,
    },
}

fn data_of(transfer: Option<U256>) -> Bytes {
    match transfer {
        Some(a) => Bytes::from(transferCall { to: ALICE, amount: a }.abi_encode()),
        None => Bytes::new(),
    }
}

fn payload(req: &Req) -> SignPayload {
    match req {
        Req::Tx { chain, nonce, to, value, transfer, gas, fee } => {
            SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
                chain_id: *chain,
                nonce: *nonce,
                max_fee_per_gas: *fee,
                max_priority_fee_per_gas: 0,
                gas_limit: *gas,
                to: Some(*to),
                value: *value,
                data: data_of(*transfer),
                access_list: vec![],
            }))
        }
        Req::UserOp { chain, nonce, calls, gas, fee, paymaster } => {
            let calls: Vec<(Address, U256, Bytes)> = calls.iter().map(|(to, v, t)| (*to, *v, data_of(*t))).collect();
            SignPayload::UserOperation(UserOperationRequest {
                chain_id: *chain,
                entry_point: ENTRY_POINT_V07,
                entry_point_version: None,
                sender: SCA,
                nonce: U256::from(*nonce),
                factory: None,
                factory_data: Bytes::new(),
                init_code: None,
                call_data: encode::simple_execute_batch(&calls),
                call_gas_limit: gas[0] as u128,
                verification_gas_limit: gas[1] as u128,
                pre_verification_gas: U256::from(gas[2]),
                max_fee_per_gas: *fee,
                max_priority_fee_per_gas: 0,
                paymaster: paymaster.then_some(PM),
                paymaster_verification_gas_limit: if *paymaster { gas[3] as u128 } else { 0 },
                paymaster_post_op_gas_limit: if *paymaster { gas[4] as u128 } else { 0 },
                paymaster_data: Bytes::new(),
            })
        }
        Req::Permit { chain, value, deadline } => SignPayload::TypedData(
            serde_json::json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]},
                "primaryType": "Permit",
                "domain": {"name": "Token", "version": "1", "chainId": chain, "verifyingContract": X1},
                "message": {"owner": ACCOUNT, "spender": S1, "value": value.to_string(), "nonce": 0, "deadline": deadline}
            })
            .to_string(),
        ),
    }
}

fn native_amount(r: &mut Rng) -> U256 {
    U256::from(*r.pick(&[0u64, 0, 1, 100, 10_000, 1_000_000, 3_000_000, 9_000_000, 30_000_000]))
}
fn token_amount(r: &mut Rng) -> U256 {
    U256::from(*r.pick(&[0u64, 1, 1000, 100_000, 1_000_000, 2_500_000, 7_000_000, 20_000_000]))
}

struct Nonces {
    tx: HashMap<u64, u64>,
    op: u64,
}

fn one_call(r: &mut Rng) -> (Address, U256, Option<U256>) {
    match r.below(10) {
        0..=3 => (ALICE, native_amount(r), None),
        4..=6 => (X1, U256::ZERO, Some(token_amount(r))),
        7 | 8 => (X2, U256::ZERO, Some(token_amount(r))),
        _ => (OTHER, native_amount(r), None),
    }
}

fn gen_req(r: &mut Rng, n: &mut Nonces, t: u64, burst: bool) -> Req {
    if burst {
        let chain = *r.pick(&[1u64, 10]);
        if r.chance(50) {
            let nonce = n.tx.entry(chain).or_insert(0);
            *nonce += 1;
            return Req::Tx {
                chain,
                nonce: *nonce - 1,
                to: ALICE,
                value: U256::from(r.below(3)),
                transfer: None,
                gas: 21_000,
                fee: 1,
            };
        }
        n.op += 1;
        return Req::UserOp {
            chain,
            nonce: n.op,
            calls: (0..1 + r.below(6)).map(|_| (ALICE, U256::from(r.below(3)), None)).collect(),
            gas: [r.below(200_000), r.below(150_000), r.below(60_000), r.below(60_000), r.below(60_000)],
            fee: r.below(3) as u128,
            paymaster: r.chance(50),
        };
    }
    let chain = *r.pick(&[1u64, 1, 10, 10, 31337]);
    match r.below(20) {
        0..=10 => {
            let nonce = n.tx.entry(chain).or_insert(0);
            *nonce += 1;
            let (to, value, transfer) = one_call(r);
            Req::Tx {
                chain,
                nonce: *nonce - 1,
                to,
                value,
                transfer,
                gas: 21_000 + r.below(400_000),
                fee: r.below(60) as u128,
            }
        }
        11..=17 => {
            n.op += 1;
            let k = 1 + r.below(6);
            Req::UserOp {
                chain,
                nonce: n.op,
                calls: (0..k).map(|_| one_call(r)).collect(),
                gas: [r.below(200_000), r.below(150_000), r.below(60_000), r.below(60_000), r.below(60_000)],
                fee: r.below(60) as u128,
                paymaster: r.chance(30),
            }
        }
        _ => Req::Permit { chain, value: token_amount(r), deadline: t + 60 + r.below(3000) },
    }
}

