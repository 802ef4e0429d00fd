//! Calldata against argument rules on narrow integers, tuples, arrays, bytes and strings:
//! decoded strictly (canonical only) and compared. Never panics; an allowed call re-encodes
//! to exactly its bytes (the contract sees what the policy saw).
#![no_main]
use alloy_dyn_abi::DynSolType;
use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::policy::{evaluate, file::resolve_text, CompiledPolicy, Context, Counters, Operation};
use bridle_common::tx::Call;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const T: Address = address!("000000000000000000000000000000000000f00d");
const SIG: &str = "f(uint8 a,int16 b,(address,uint256[]) c,bytes d,string[2] e)";

fn policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let text = format!(
            r#"
name = "fuzz"
chains = [1]
valid_until = 1900000000
max_duration = "3650 days"
[[calls]]
target = "{T}"
functions = [{{ signature = "{SIG}", args = [
  {{ arg = "a", op = "lte", value = 10 }},
  {{ arg = "b", op = "gte", value = -5 }},
  {{ arg = "2.0", op = "eq", value = "0x00000000000000000000000000000000000a11ce" }},
]}}]
"#
        );
        CompiledPolicy::compile(resolve_text(&text, 1_800_000_000).unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let p = policy();
    let sel = alloy_primitives::keccak256(b"f(uint8,int16,(address,uint256[]),bytes,string[2])");
    let mut cd = sel[..4].to_vec();
    cd.extend_from_slice(data);
    let call = Call { to: Some(T), value: U256::ZERO, data: Bytes::from(cd.clone()) };
    let ctx = Context { now: 1_800_000_000, anchor: 1_800_000_000, owner: Address::ZERO, account: Address::ZERO };
    let calls = [call];
    let op = Operation {
        chain_id: 1,
        calls: &calls,
        gas: None,
        place: bridle_common::allowance::Place::Own { chain_id: 1, nonce: 0 },
        holder: Address::ZERO,
    };
    if evaluate(p, &Counters::new(), &ctx, &op).is_ok() {
        let ty: DynSolType = "(uint8,int16,(address,uint256[]),bytes,string[2])".parse().unwrap();
        let v = ty.abi_decode_params(&cd[4..]).expect("an allowed call decodes");
        assert_eq!(v.abi_encode_params(), cd[4..].to_vec(), "an allowed call is canonical");
    }
});
