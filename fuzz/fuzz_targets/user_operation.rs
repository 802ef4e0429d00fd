//! ERC-4337 user operations, structure-aware: account callData built from execute,
//! executeBatch and ERC-7579 execute in every call type and exec type, nested and mangled,
//! under a policy with calls, approvals and user operations. Never panics; an allowed
//! operation only calls targets the policy lists (checked independently here).
#![no_main]
use alloy_primitives::{address, Address, Bytes, U256};
use arbitrary::{Arbitrary, Unstructured};
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use bridle_common::userop::{decode_account_call, encode, UserOperationRequest, ENTRY_POINT_V07};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");

fn policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let text = format!(
            r#"
name = "fuzz"
chains = [1]
valid_until = 1900000000
max_duration = "3650 days"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["*"]
[[calls]]
target = "{ROUTER}"
functions = ["swap(address,uint256,uint256)"]
[[limits]]
max = "1000 USDC"
per = "day"
[approvals]
spenders = ["{ROUTER}"]
max = ["100 USDC"]
[user_operations]
entry_points = ["v0.7"]
"#
        );
        CompiledPolicy::compile(resolve_text(&text, 1_800_000_000).unwrap()).unwrap()
    })
}

fn inner(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Bytes> {
    let target = *u.choose(&[USDC, ROUTER, Address::ZERO, Address::repeat_byte(7)])?;
    let calls = |u: &mut Unstructured<'_>, d: u32| -> arbitrary::Result<Vec<(Address, U256, Bytes)>> {
        let n = u.int_in_range(0..=5)?;
        (0..n).map(|_| Ok((*u.choose(&[USDC, ROUTER])?, U256::from(u8::arbitrary(u)?), inner(u, d + 1)?))).collect()
    };
    Ok(match u.int_in_range(0..=6)? {
        0 if depth < 8 => encode::simple_execute(target, U256::from(u16::arbitrary(u)?), inner(u, depth + 1)?),
        1 if depth < 8 => encode::simple_execute_batch(&calls(u, depth)?),
        2 if depth < 8 => encode::erc7579_batch(&calls(u, depth)?),
        3 if depth < 8 => {
            let mut v = encode::erc7579_single(target, U256::from(u8::arbitrary(u)?), &inner(u, depth + 1)?).to_vec();
            // Any call type and exec type.
            if v.len() > 6 {
                v[4] = u8::arbitrary(u)?;
                v[5] = u8::arbitrary(u)?;
            }
            Bytes::from(v)
        }
        4 => {
            let mut v = inner(u, depth + 1)?.to_vec();
            if !v.is_empty() {
                let i = u.choose_index(v.len())?;
                v[i] = u8::arbitrary(u)?;
            }
            Bytes::from(v)
        }
        5 => Bytes::from(<Vec<u8>>::arbitrary(u)?),
        _ => {
            let mut d = vec![0x09, 0x5e, 0xa7, 0xb3]; // approve(address,uint256)
            d.extend_from_slice(&[0u8; 12]);
            d.extend_from_slice(ROUTER.as_slice());
            d.extend_from_slice(&U256::from(u32::arbitrary(u)?).to_be_bytes::<32>());
            Bytes::from(d)
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(call_data) = inner(&mut u, 0) else { return };
    let op = UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: Address::repeat_byte(0x5c),
        nonce: U256::from(u64::arbitrary(&mut u).unwrap_or(0)),
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data,
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(1),
        max_fee_per_gas: 1,
        max_priority_fee_per_gas: 1,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    };
    let payload = SignPayload::UserOperation(op.clone());
    let Ok(prepared) = prepare(&payload) else { return };
    let ctx = Context { now: 1_800_000_000, anchor: 1_800_000_000, owner: Address::ZERO, account: Address::ZERO };
    if prepared.evaluate(policy(), &Counters::new(), &ctx).is_ok() {
        let calls = decode_account_call(&op.call_data).expect("an allowed operation decodes");
        for c in calls {
            assert!(c.to == Some(USDC) || c.to == Some(ROUTER), "allowed a call to {:?}", c.to);
        }
    }
});
