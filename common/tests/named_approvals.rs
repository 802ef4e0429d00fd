//! Functions a policy may not name (AG-212 4.1, 4.3, 4.9; a review of 2026-12-07): a rule
//! naming, on a listed token, a function that moves or approves it other than the four the
//! engine meters — `increaseApproval(stranger, 2^256 − 1)` was signed with nothing in the
//! registry and 0 USD of exposure; `transferAndCall` moved a million LINK past a 10 LINK
//! daily cap — or, on a contract not listed, a function granting an approval the engine does
//! not decode (`setApprovalForAll(stranger, true)`: every NFT, for good) is refused
//! `invalid_policy`. What stays: the metered functions, a permit's submission, ERC-20
//! `approve` named on an unlisted contract (refused when signed, `unlimited_approval`).

use alloy_primitives::{address, Address};
use bridle_common::error::{Denial, ErrorCode};
use bridle_common::policy::{file::resolve_text, CompiledPolicy};

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("A0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48");
const NFT: Address = address!("BC4CA0EdA7647A8aB7C2061c2E118A18a936f13D");
const ROUTER: Address = address!("E592427A0AEce92De3Edee1F18E0157C05861564");

fn compile(target: &str, functions: &str) -> Result<CompiledPolicy, Denial> {
    let text = format!(
        r#"
name = "named-approvals"
chains = [1]
valid_for = "1h"
prices = {{ USDC = "1.00" }}
exposure_ceiling = "100 USD"
[tokens]
USDC = {{ address = "{USDC}", decimals = 6 }}
[[calls]]
target = "{target}"
functions = [{functions}]
[gas]
max_fee_per_gas = "10 gwei"
[approvals]
spenders = ["{ROUTER}"]
max = ["1000 USDC"]
"#
    );
    CompiledPolicy::compile(resolve_text(&text, T0).expect("resolves"))
}

fn refused(target: &str, function: &str) -> Denial {
    let d = compile(target, &format!("\"{function}\"")).expect_err(function);
    assert_eq!((d.code, d.rule.as_deref()), (ErrorCode::InvalidPolicy, Some("calls[0].functions[0]")), "{d}");
    d
}

#[test]
fn a_listed_token_may_be_named_only_with_its_metered_functions() {
    for f in [
        "increaseApproval(address,uint256)",
        "transferAndCall(address,uint256,bytes)",
        "approveAndCall(address,uint256,bytes)",
        "safeTransfer(address,uint256)",
        "setApprovalForAll(address,bool)",
        "send(address,uint256,bytes)",
        // Movers no list of token-moving functions names (a review of the first form, a
        // denylist): ERC-223's transfer, an OFT's send, a multicall of the token's own
        // functions. What may be named is a list of what moves nothing past the engine.
        "transfer(address,uint256,bytes)",
        "send((uint32,bytes32,uint256,uint256,bytes,bytes,bytes),(uint256,uint256),address)",
        "multicall(bytes[])",
        "balanceOf(address)",
    ] {
        let d = refused("USDC", f);
        assert!(d.reason.contains("USDC") && d.reason.contains("may name only"), "{d}");
    }
    for f in [
        "\"transfer(address,uint256)\", \"transferFrom(address,address,uint256)\"",
        "\"approve(address,uint256)\", \"increaseAllowance(address,uint256)\"",
        "\"permit(address,address,uint256,uint256,uint8,bytes32,bytes32)\"",
        "\"decreaseAllowance(address,uint256)\", \"deposit()\", \"withdraw(uint256)\", \"delegate(address)\"",
    ] {
        compile("USDC", f).unwrap_or_else(|d| panic!("{f}: {d}"));
    }
}

#[test]
fn an_unlisted_contract_may_not_be_named_with_an_approval_it_cannot_meter() {
    let nft = NFT.to_string();
    for f in [
        "setApprovalForAll(address,bool)",
        "increaseApproval(address,uint256)",
        "approveAndCall(address,uint256,bytes)",
        "authorizeOperator(address)",
        "approve(address,uint256,uint256)",
        "setOperator(address,bool)",
        "approve(address,address,uint160,uint48)",
    ] {
        let d = refused(&nft, f);
        assert!(d.reason.contains("list the token"), "{d}");
    }
    // ERC-20 approve and increaseAllowance are decoded on any contract (refused when signed
    // there), and functions that move nothing are the owner's to name.
    for f in ["\"approve(address,uint256)\"", "\"mint(uint256)\"", "\"safeTransferFrom(address,address,uint256)\""] {
        compile(&nft, f).unwrap_or_else(|d| panic!("{f}: {d}"));
    }
}
