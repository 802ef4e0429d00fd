//! A review of the first form of the named-function refusal (2026-12-07): each proof of
//! what still compiled and signed — a permit rule naming a token or an NFT as its Permit2
//! contract, `*` on an unlisted contract, token movers outside a list of token-moving
//! functions, an L2 bridge burning a bridged token past its cap — now refused.

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::policy::explain::explain;
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{evaluate, CompiledPolicy, Context, Counters, Operation};
use bridle_common::tx::Call;

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const NFT: Address = address!("BC4CA0EdA7647A8aB7C2061c2E118A18a936f13D");
const ROUTER: Address = address!("E592427A0AEce92De3Edee1F18E0157C05861564");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");
// Optimism: bridged USDC.e (an OptimismMintableERC20) and the L2StandardBridge predeploy.
const USDCE_OP: Address = address!("7F5c764cBc14f9669B88837ca1490cCa17c31607");
const L2_BRIDGE: Address = address!("4200000000000000000000000000000000000010");

fn compile(text: &str) -> Result<CompiledPolicy, String> {
    let doc = resolve_text(text, T0).map_err(|d| d.to_string())?;
    CompiledPolicy::compile(doc).map_err(|d| d.to_string())
}

fn eval(p: &CompiledPolicy, chain_id: u64, to: Address, data: Vec<u8>) -> Result<(), String> {
    let calls = [Call { to: Some(to), value: U256::ZERO, data: Bytes::from(data) }];
    let c = Counters::default();
    let ctx = Context { now: T0 + 10, anchor: T0, owner: OWNER, account: ACCOUNT };
    let op = Operation {
        chain_id,
        calls: &calls,
        gas: None,
        place: bridle_common::allowance::Place::Own { chain_id, nonce: 0 },
        holder: ACCOUNT,
    };
    evaluate(p, &c, &ctx, &op).map(|_| ()).map_err(|d| d.to_string())
}

fn sel(sig: &str) -> Vec<u8> {
    alloy_primitives::keccak256(sig.as_bytes())[..4].to_vec()
}
fn word_addr(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}
fn word_u(n: U256) -> [u8; 32] {
    n.to_be_bytes::<32>()
}

fn base(extra: &str, calls: &str) -> String {
    format!(
        r#"
name = "named-functions"
chains = [1]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "100 USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[limits]]
max = "10 USDC"
per = "day"
{calls}
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = ["{ROUTER}"]
max = ["1000 USDC"]
{extra}
"#
    )
}

/// Before the fix: a `[[permits]]` rule naming the listed token's address as its `permit2` contract lifts
/// the whole check for that target: `transferAndCall` and `increaseApproval` on USDC compile,
/// and transferAndCall moves 1 000 000 USDC past a 10 USDC daily cap.
#[test]
fn a_permit_rule_naming_a_token_as_permit2_lifts_nothing() {
    let calls = r#"[[calls]]
target = "USDC"
functions = ["transferAndCall(address,uint256,bytes)", "increaseApproval(address,uint256)"]"#;
    // Without the permit rule: refused.
    assert!(compile(&base("", calls)).is_err());
    let permit = format!("[[permits]]\nkind = \"permit2\"\nmax_deadline = \"30m\"\npermit2 = \"{USDC}\"");
    let e = compile(&base(&permit, calls)).expect_err("a listed token named as a Permit2 contract");
    assert!(e.contains("not a Permit2 contract") || e.contains("may name only"), "{e}");
    let e = compile(&base(&permit, "")).expect_err("a listed token is never a Permit2 contract");
    assert!(e.contains("not a Permit2 contract"), "{e}");
}

/// Before the fix: the same on an unlisted contract: any permit rule naming the NFT as `permit2`
/// lets `setApprovalForAll` be named (and signed), not only Permit2's `approve`.
#[test]
fn a_permit_rule_naming_an_nft_as_permit2_exempts_only_permit2s_approve() {
    let calls = format!("[[calls]]\ntarget = \"{NFT}\"\nfunctions = [\"setApprovalForAll(address,bool)\"]");
    assert!(compile(&base("", &calls)).is_err());
    let permit = format!("[[permits]]\nkind = \"permit2\"\nmax_deadline = \"30m\"\npermit2 = \"{NFT}\"");
    let e = compile(&base(&permit, &calls)).expect_err("only Permit2's approve is exempt on a Permit2 contract");
    assert!(e.contains("setApprovalForAll"), "{e}");
}

/// Before the fix: `functions = ["*"]` on an unlisted contract covers every approving function the
/// commit refuses by name: setApprovalForAll(stranger, true) signs.
#[test]
fn star_on_an_unlisted_contract_covers_no_approval_it_cannot_meter() {
    let named = format!("[[calls]]\ntarget = \"{NFT}\"\nfunctions = [\"setApprovalForAll(address,bool)\"]");
    assert!(compile(&base("", &named)).is_err());
    let star = format!("[[calls]]\ntarget = \"{NFT}\"\nfunctions = [\"*\"]");
    let p = compile(&base("", &star)).expect("compiles");
    for sig in ["setApprovalForAll(address,bool)", "increaseApproval(address,uint256)"] {
        let mut d = sel(sig);
        d.extend(word_addr(ALICE));
        d.extend(word_u(if sig.starts_with("set") { U256::from(1) } else { U256::MAX }));
        let e = eval(&p, 1, NFT, d).expect_err(sig);
        assert!(e.contains("selector_not_allowed"), "{sig}: {e}");
    }
}

/// Before the fix: on a listed token the check is a denylist (TOKEN_MOVING); token-moving functions it
/// does not list are still nameable and move the token unmetered: ERC-223
/// `transfer(address,uint256,bytes)`, LayerZero OFT `send`, OFT v1 `sendFrom`,
/// OpenZeppelin `multicall(bytes[])` (delegatecalls the token's own transfer).
#[test]
fn listed_token_movers_outside_any_list_are_refused() {
    for sig in [
        "transfer(address,uint256,bytes)",
        "send((uint32,bytes32,uint256,uint256,bytes,bytes,bytes),(uint256,uint256),address)",
        "sendFrom(address,uint16,bytes,uint256,address,address,bytes)",
        "multicall(bytes[])",
        "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)",
    ] {
        let calls = format!("[[calls]]\ntarget = \"USDC\"\nfunctions = [\"{sig}\"]");
        let e = compile(&base("", &calls)).expect_err(sig);
        assert!(e.contains("may name only"), "{sig}: {e}");
    }
}

/// Before the fix (older than the refusal): a contract that
/// burns a listed token from msg.sender without an allowance — OP's L2StandardBridge
/// `withdrawTo` on an OptimismMintableERC20 — passes a wildcard target and moves the token
/// to any L1 address past its cap (and a rule naming it compiles too).
#[test]
fn a_wildcard_does_not_bridge_a_token_out_past_its_cap() {
    let text = format!(
        r#"
name = "op-bridge"
chains = [10]
valid_for = "1h"
max_value_per_call = "0.01 ETH"
[tokens]
USDCe = {{ address = "{USDCE_OP}", decimals = 6 }}
[[limits]]
max = "10 USDCe"
per = "day"
[[calls]]
target = "*"
functions = ["*"]
[gas]
max_fee_per_gas = "10 gwei"
"#
    );
    let p = compile(&text).expect("compiles");
    let mut d = sel("withdrawTo(address,address,uint256,uint32,bytes)");
    d.extend(word_addr(USDCE_OP));
    d.extend(word_addr(ALICE));
    d.extend(word_u(U256::from(1_000_000_000_000u64)));
    d.extend(word_u(U256::ZERO));
    d.extend(word_u(U256::from(160)));
    d.extend(word_u(U256::ZERO));
    let e = eval(&p, 10, L2_BRIDGE, d).expect_err("1M USDC.e bridged to ALICE past a 10/day cap");
    assert!(e.contains("target_not_allowed"), "{e}");
    // A direct transfer of the same is capped.
    let mut t = sel("transfer(address,uint256)");
    t.extend(word_addr(ALICE));
    t.extend(word_u(U256::from(1_000_000_000_000u64)));
    assert!(eval(&p, 10, USDCE_OP, t).is_err());
}

/// Explain: the new lines print as described.
#[test]
fn explain_names_a_missing_ceiling_and_trip_wire() {
    let calls = "[[calls]]\ntarget = \"USDC\"\nfunctions = [\"approve(address,uint256)\"]";
    let p = compile(&base("", calls)).unwrap();
    let e = explain(&p);
    assert!(!e.contains("exposure ceiling: none"), "{e}");
    assert!(e.contains("trip_wire: none"), "{e}");
    let text = base("", calls).replace("exposure_ceiling = \"100 USD\"\n", "");
    let e = explain(&compile(&text).unwrap());
    let line = e.lines().find(|l| l.starts_with("exposure ceiling: none")).expect("line");
    println!("{line}");
}

/// What stays refused (a cost: an owner cannot vouch by arguments): the check reads the selector only, never the
/// argument rules. Redeeming a listed ERC-4626 share to the session's own account, and a
/// revoke-only `setApprovalForAll(operator, false)`, are refused.
#[test]
fn argument_rules_do_not_make_an_unnameable_function_nameable() {
    let calls = r#"[[calls]]
target = "USDC"
functions = [{ signature = "redeem(uint256 shares, address receiver, address owner)", args = [
  { arg = "receiver", op = "eq", value = "$account" },
  { arg = "owner", op = "eq", value = "$account" },
] }]"#;
    let e = compile(&base("", calls)).expect_err("refused although receiver and owner are $account");
    println!("{e}");
    let calls = format!(
        r#"[[calls]]
target = "{NFT}"
functions = [{{ signature = "setApprovalForAll(address operator, bool approved)", args = [
  {{ arg = "approved", op = "eq", value = false }},
] }}]"#
    );
    let e = compile(&base("", &calls)).expect_err("a revoke-only rule is refused");
    println!("{e}");
}
