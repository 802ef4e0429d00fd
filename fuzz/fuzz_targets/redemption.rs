//! ERC-7710 redemptions (`redeemDelegations` on a listed manager) through the policy: never
//! panics; an allowed redemption is canonical (it re-encodes to exactly its bytes, so the
//! DelegationManager decodes what the policy saw), names only listed managers and delegators,
//! and every execution it runs is a transfer to Alice within the cap.
#![no_main]
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::SolCall;
use bridle_common::delegation::{decode_redemption, redeemDelegationsCall};
use bridle_common::policy::{evaluate, file::resolve_text, CompiledPolicy, Context, Counters, Operation};
use bridle_common::tx::Call;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const MANAGER: Address = address!("000000000000000000000000000000000000da7a");
const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const TOKEN: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");

fn policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let text = format!(
            r#"
name = "fuzz"
chains = [1]
valid_until = 1900000000
max_duration = "3650 days"
recipients = ["0x00000000000000000000000000000000000a11ce"]
tokens = {{ USDC = {{ address = "{TOKEN}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "100 USDC"
per = "day"
[delegations]
managers = ["{MANAGER}"]
delegators = ["0x000000000000000000000000000000000000d001"]
"#
        );
        CompiledPolicy::compile(resolve_text(&text, 1_800_000_000).unwrap()).unwrap()
    })
}

/// Either raw argument bytes, or a well-formed redemption built from fuzzed parts and then
/// corrupted at a few places (random bytes rarely make a valid ABI encoding on their own).
#[derive(Debug, arbitrary::Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Built { entries: Vec<(u8, [u8; 2], bool, u8, u64)>, flips: Vec<(u16, u8)> },
}

fn build(entries: &[(u8, [u8; 2], bool, u8, u64)], flips: &[(u16, u8)]) -> Vec<u8> {
    use bridle_common::delegation::*;
    let who = |n: u8| match n % 4 {
        0 => SESSION,
        1 => ANY_DELEGATE,
        2 => address!("000000000000000000000000000000000000d001"),
        _ => address!("000000000000000000000000000000000000d002"),
    };
    let parts: Vec<_> = entries
        .iter()
        .take(20)
        .map(|&(chain, mode2, batch, to, amount)| {
            let chain: Vec<Delegation> = (0..chain % 4)
                .map(|i| Delegation {
                    delegate: who(i ^ chain),
                    delegator: who(i.wrapping_add(chain >> 2)),
                    authority: alloy_primitives::B256::repeat_byte(0xff),
                    caveats: vec![],
                    salt: U256::from(i),
                    signature: Bytes::new(),
                })
                .collect();
            let mut mode = [0u8; 32];
            mode[..2].copy_from_slice(&mode2);
            let rcpt = if to % 2 == 0 { address!("00000000000000000000000000000000000a11ce") } else { who(to) };
            let target = if to % 3 == 0 { TOKEN } else { who(to >> 2) };
            let data = alloy_primitives::hex::decode("a9059cbb")
                .unwrap()
                .into_iter()
                .chain(alloy_sol_types::SolValue::abi_encode(&(rcpt, U256::from(amount))))
                .collect::<Vec<u8>>();
            let exec = if batch {
                batch_execution(&[(target, U256::ZERO, data.clone().into()), (TOKEN, U256::ZERO, data.into())])
            } else {
                single_execution(target, U256::ZERO, &data)
            };
            (chain, mode, exec)
        })
        .collect();
    let mut out = encode_redemption(&parts);
    for &(at, b) in flips.iter().take(4) {
        if !out.is_empty() {
            let i = at as usize % out.len();
            out[i] = b;
        }
    }
    out
}

fuzz_target!(|input: Input| {
    let p = policy();
    let cd = match &input {
        Input::Raw(data) => [&redeemDelegationsCall::SELECTOR[..], data].concat(),
        Input::Built { entries, flips } => build(entries, flips),
    };
    let calls = [Call { to: Some(MANAGER), value: U256::ZERO, data: Bytes::from(cd.clone()) }];
    let ctx = Context { now: 1_800_000_000, anchor: 1_800_000_000, owner: Address::ZERO, account: SESSION };
    let op = Operation {
        chain_id: 1,
        calls: &calls,
        gas: None,
        place: bridle_common::allowance::Place::Own { chain_id: 1, nonce: 0 },
        holder: SESSION,
    };
    if let Ok(ch) = evaluate(p, &Counters::new(), &ctx, &op) {
        let c = redeemDelegationsCall::abi_decode(&cd).expect("an allowed redemption decodes");
        assert_eq!(c.abi_encode(), cd, "an allowed redemption is canonical");
        let entries = decode_redemption(&cd, SESSION).expect("and its entries");
        for e in &entries {
            assert_eq!(e.root, address!("000000000000000000000000000000000000d001"), "{e:?}");
            assert!(e.calls.iter().all(|c| c.to == Some(TOKEN) && c.value.is_zero()));
        }
        assert!(ch.tokens.iter().all(|(_, v)| *v <= U256::from(100_000_000u64)), "within the cap");
    }
});
