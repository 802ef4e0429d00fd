//! A review of `conformance = "AG-212"` (2026-12-07): policies that compiled under the
//! claim yet let the agent do what an AG-212 MUST forbids — user-operation prefunds and fees
//! draining the native coin, an unlisted ERC-20 or an NFT moved with no bound, a smart
//! account's standing allowances spent through unmetered calls from any account, a
//! trip-wire that never fires. Each is refused under the claim now, and the conforming
//! policy bounds the prefunds. In-process (`Machine`).
use alloy_primitives::{address, Address, Bytes, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::machine::Machine;
use bridle_common::policy::{file::resolve_text, CompiledPolicy};
use bridle_common::protocol::SignPayload;
use bridle_common::stamp::Stamp;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_common::userop::{encode, UserOperationRequest, ENTRY_POINT_V07};

#[allow(dead_code)]
mod support;
use support::{Key, OWNER};

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function swap(address tokenIn, uint256 amountIn, uint256 minOut);
}

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const DAI: Address = address!("6B175474E89094C44Da98b954EedeAC495271d0F");
const NFT: Address = address!("BC4CA0EdA7647A8aB7C2061c2E118A18a936f13D");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ACCOUNT: Address = address!("0000000000000000000000000000000000005ca0");
const ATTACKER: Address = Address::repeat_byte(0xee);

/// `common/tests/conformance_profile.rs`'s conforming policy.
const CONFORMING: &str = include_str!("conformance_profile.toml");

fn compile(text: &str) -> CompiledPolicy {
    CompiledPolicy::compile(resolve_text(text, T0).unwrap_or_else(|d| panic!("resolves: {d}")))
        .unwrap_or_else(|d| panic!("compiles under the claim: {d}"))
}

/// The refusal of `text` under the claim: its rule.
fn refused(text: &str) -> String {
    let d = CompiledPolicy::compile(resolve_text(text, T0).unwrap_or_else(|d| panic!("resolves: {d}")))
        .map(|_| ())
        .expect_err("refused under the claim");
    assert!(d.reason.starts_with("AG-212 "), "{d}");
    d.rule.unwrap_or_default()
}

fn with(from: &str, to: &str) -> String {
    assert!(CONFORMING.contains(from), "{from}");
    CONFORMING.replacen(from, to, 1)
}

fn machine(p: CompiledPolicy) -> Machine {
    Machine::new(Address::repeat_byte(0x51), OWNER, Address::repeat_byte(0xa9), p, T0, 60, 4096)
}

fn sign(m: &mut Machine, clock: u64, n: u64, p: &SignPayload) -> Result<(), String> {
    let prepared = bridle_common::payload::prepare(p).map_err(|d| d.to_string())?;
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(&n.to_be_bytes());
    let stamp = Stamp { nonce, timestamp: clock, mac: [0u8; 32] };
    m.sign(clock, p, prepared, &stamp, Some(&Key)).result.map(|_| ()).map_err(|d| d.to_string())
}

fn userop(nonce: u64, call_data: Bytes, pvg: u64, fee: u128) -> SignPayload {
    SignPayload::UserOperation(UserOperationRequest {
        chain_id: 1,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: ACCOUNT,
        nonce: U256::from(nonce),
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data,
        call_gas_limit: 100_000,
        verification_gas_limit: 100_000,
        pre_verification_gas: U256::from(pvg),
        max_fee_per_gas: fee,
        max_priority_fee_per_gas: fee,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    })
}

const ETH: u128 = 1_000_000_000_000_000_000;

/// User-operation prefunds (charged as native value) and fees: the conforming policy bounds
/// the native coin over the session, with fees counted in it; a run of large prefunds stops
/// at its 0.05 ETH a day. (The first form asked for a native limit only when value could
/// move: 200 000 ETH of prefunds were signed.)
#[test]
fn prefunds_and_fees_stop_at_the_native_bound() {
    let mut m = machine(compile(CONFORMING));
    let mut signed = 0;
    for i in 0..20u64 {
        let inner: Bytes = transferCall { to: ATTACKER, amount: U256::from(1u8) }.abi_encode().into();
        let op = userop(i, encode::simple_execute(USDC, U256::ZERO, inner), 50_000, 50_000_000_000);
        match sign(&mut m, T0 + 10 + i, i + 1, &op) {
            Ok(()) => signed += 1,
            Err(d) => {
                assert!(d.contains("spend_cap"), "{d}");
                break;
            }
        }
    }
    assert!(signed < 20, "every prefund signed");
    let native = m.status(T0 + 100, None).caps.into_iter().find(|c| c.symbol == "ETH").expect("the native limit");
    assert!(native.spent <= U256::from(ETH / 20), "{native:?}");
    // A policy without the native limit, or without fee caps, is refused under the claim.
    assert_eq!(refused(&with("[[limits]]\nmax = \"0.05 ETH\"\nper = \"day\"\n", "")), "conformance.limits");
    assert_eq!(refused(&with("max_fee_per_gas = \"100 gwei\"\n", "")), "conformance.gas");
}

/// An unlisted ERC-20 or an NFT named with its transfer functions: refused under the claim
/// (the first form signed 3 × 1 000 000 DAI and 50 NFTs to a stranger).
#[test]
fn token_moving_functions_on_unlisted_contracts_are_refused() {
    for (target, functions) in [
        (DAI, "\"transfer(address,uint256)\""),
        (NFT, "\"transferFrom(address,address,uint256)\", \"safeTransferFrom(address,address,uint256)\""),
    ] {
        let text =
            with("[[limits]]", &format!("[[calls]]\ntarget = \"{target}\"\nfunctions = [{functions}]\n[[limits]]"));
        assert_eq!(refused(&text), "conformance.calls[2]", "{target}");
    }
    // Listed, with a limit, the token is bounded: accepted.
    let listed = with(
        "[[limits]]",
        &format!("[[calls]]\ntarget = \"{DAI}\"\nfunctions = [\"transfer(address,uint256)\"]\n[[limits]]"),
    )
    .replace("[tokens]\n", &format!("[tokens]\nDAI = {{ address = \"{DAI}\", decimals = 18 }}\n"))
    .replace("[gas]", "[[limits]]\nmax = \"100 DAI\"\nper = \"day\"\n[gas]");
    compile(&listed);
}

/// Unmetered calls from any account the key signs for could spend what an account approved
/// outside Bridle (the first form swapped 3 × 1 000 000 USDC out under a 10 000 USDC daily
/// limit): under the claim only from accounts the owner names.
#[test]
fn unmetered_calls_need_named_accounts() {
    let any = with("senders = [\"0x0000000000000000000000000000000000005ca0\"]\n", "");
    assert_eq!(refused(&any), "conformance.user_operations.unmetered_calls");
    // A named account's swap without an approval in the batch is still the owner's vouching
    // (RULES §5): the claim cannot see standing allowances, only ask that accounts be named.
    let swap: Bytes =
        swapCall { tokenIn: USDC, amountIn: U256::from(1_000_000u64), minOut: U256::ZERO }.abi_encode().into();
    let op = userop(0, encode::simple_execute(ROUTER, U256::ZERO, swap), 50_000, 10_000_000_000);
    let mut m = machine(compile(CONFORMING));
    sign(&mut m, T0 + 10, 1, &op).expect("a named account's unmetered call");
}

/// A trip-wire that needs more than 20 denials, or counts them within less than a minute,
/// never fires on a slow burst (the first form accepted 10 000 a second): refused.
#[test]
fn a_trip_wire_that_may_never_fire_is_refused() {
    for t in ["denials = 10000, within = \"1s\"", "denials = 21, within = \"1h\"", "denials = 5, within = \"30s\""] {
        assert_eq!(refused(&with("denials = 5, within = \"10m\"", t)), "conformance.trip_wire", "{t}");
    }
}

/// A transaction's fee is capped per transaction and counted in the native bound: one with
/// a 10 000 ETH maximum fee is refused (the first form signed it).
#[test]
fn a_ten_thousand_eth_fee_is_refused() {
    let mut m = machine(compile(CONFORMING));
    let data = transferCall { to: ATTACKER, amount: U256::from(1u8) }.abi_encode();
    let p = SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 1,
        nonce: 0,
        max_fee_per_gas: 1_000_000 * 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000 * 1_000_000_000,
        gas_limit: 10_000_000,
        to: Some(USDC),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }));
    let d = sign(&mut m, T0 + 10, 1, &p).expect_err("refused");
    assert!(d.contains("gas_cap"), "{d}");
}

/// JSON document path and hashing: the normalized document of a claiming policy, sent as
/// JSON, is refused/accepted exactly as the TOML; a policy claiming nothing hashes without
/// the field, and `"conformance": null` is the same document.
#[test]
fn json_and_toml_agree_and_a_policy_claiming_nothing_hashes_as_before() {
    use bridle_common::policy::doc::Policy;
    // Refused by TOML and by its JSON document alike (trip-wire removed).
    let bad = with("trip_wire = { denials = 5, within = \"10m\" }\n", "");
    let doc = resolve_text(&bad, T0).unwrap();
    let json = serde_json::to_string(&doc).unwrap();
    assert!(json.contains("\"conformance\":\"AG-212\""), "{json}");
    let toml_err = CompiledPolicy::compile(doc).unwrap_err();
    let json_err = CompiledPolicy::compile(resolve_text(&json, T0).unwrap()).unwrap_err();
    assert_eq!(toml_err.rule, json_err.rule);
    // Another spelling is refused in both.
    assert!(resolve_text(&json.replace("\"AG-212\"", "\"ag-212\""), T0).is_err());
    assert!(resolve_text(&with("\"AG-212\"", "\"ag-212\""), T0).is_err());
    // The JSON *file* form (not the document) with the claim.
    // No claim: hashes the same with the field absent or null.
    let plain = resolve_text(&with("conformance = \"AG-212\"\n", ""), T0).unwrap();
    let pj = serde_json::to_string(&plain).unwrap();
    assert!(!pj.contains("conformance"));
    let with_null = format!("{},\"conformance\":null}}", &pj[..pj.len() - 1]);
    let again: Policy = serde_json::from_str(&with_null).unwrap();
    assert_eq!(again.hash(), plain.hash());
    assert_eq!(String::from_utf8(again.canonical_bytes()).unwrap(), pj);
}

/// A second review: a rule naming an account-executing function on a specific contract —
/// a smart account the session key owns calling `execute` directly — moved 3 000 000 USDC
/// past a 10 000 USDC daily limit under the claim, none of it counted (RULES §5: such
/// functions run their calls unmetered when named). Under the claim every such function is
/// refused, and so is any rule on an account the session signs or redeems for.
#[test]
fn account_executing_functions_and_accounts_as_targets_are_refused() {
    let other = "0x0000000000000000000000000000000000005cb0";
    for sig in [
        "execute(address,uint256,bytes)",
        "executeBatch((address,uint256,bytes)[])",
        "execute(bytes32,bytes)",
        "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)",
        "execTransactionFromModule(address,uint256,bytes,uint8)",
        "execTransactionWithRole(address,uint256,bytes,uint8,bytes32,bool)",
        "executeAllowanceTransfer(address,address,address,uint96,address,uint96,address,bytes)",
        "redeemDelegations(bytes[],(address,uint256,bytes)[])",
        "upgradeToAndCall(address,bytes)",
        "transferOwnership(address)",
        "enableModule(address)",
        "installModule(uint256,address,bytes)",
    ] {
        let text = with("[[limits]]", &format!("[[calls]]\ntarget = \"{other}\"\nfunctions = [\"{sig}\"]\n[[limits]]"));
        assert_eq!(refused(&text), "conformance.calls[2]", "{sig}");
    }
    let own = with("[[limits]]", &format!("[[calls]]\ntarget = \"{ACCOUNT}\"\nfunctions = [\"nonce()\"]\n[[limits]]"));
    assert_eq!(refused(&own), "conformance.calls[2].target");
}

/// The claim is the policy's: an owner's signed update to a policy that claims nothing is
/// accepted (the owner re-authenticates, AG-212 4.5), and the session then claims nothing
/// (`explain` and the status show the policy in force).
#[test]
fn an_owners_update_may_drop_the_claim() {
    let mut m = machine(compile(CONFORMING));
    let plain = with("conformance = \"AG-212\"\n", "");
    m.update_policy(T0 + 10, compile(&plain)).result.expect("the owner's update");
    assert!(m.policy().doc.conformance.is_none());
}

/// Without the claim, naming an account-executing function is the owner's choice (RULES §5);
/// `explain` says that nothing moving through it is metered.
#[test]
fn explain_warns_of_a_named_account_executing_function() {
    let text = with("conformance = \"AG-212\"\n", "")
        .replace("[[limits]]", "[[calls]]\ntarget = \"0x0000000000000000000000000000000000005cb0\"\nfunctions = [\"execute(address,uint256,bytes)\"]\n[[limits]]");
    let e = bridle_common::policy::explain::explain(&compile(&text));
    assert!(e.contains("warning: through this function an account runs calls as itself"), "{e}");
}
