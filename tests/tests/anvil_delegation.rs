//! ERC-7710 delegations (issue 14 item 5; AG-212 4.8) on anvil with MetaMask's published
//! Delegation Framework (`@metamask/delegation-abis` 2.0.0: `DelegationManager` v1.3.0 and
//! `EIP7702StatelessDeleGator`): a delegator (an EOA running the DeleGator through EIP-7702)
//! signs a delegation to the session; the session redeems it with a transaction signed by
//! the real enclave through the real host. Every execution is checked as a call held by the
//! delegator: the session's caps bind what the delegator's account moves, the recipients
//! and targets bind where it goes, approvals land in the registry under the delegator —
//! and what the enclave signed does exactly that on chain.
//!
//! Test tools (fail, never skip, when missing): `npm ci --prefix tests/fixtures/userop`.

use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolValue};
use bridle_common::delegation::{
    batch_execution, encode_redemption, single_execution, Delegation, MODE_BATCH, MODE_SINGLE,
};
use bridle_common::protocol::SignPayload;
use bridle_common::tx::{Eip1559Request, TxRequest};
use bridle_tests::aa::*;
use bridle_tests::*;
use serde_json::{json, Value};

sol! {
    function getDomainHash() returns (bytes32);
}

/// `getDelegationHash(Delegation)` calldata, from the ABI signature (the manager hashes
/// the delegation exactly as Bridle's types encode it).
fn get_delegation_hash(d: &Delegation) -> Vec<u8> {
    let sig = "getDelegationHash((address,address,bytes32,(address,bytes,bytes)[],uint256,bytes))";
    [&keccak256(sig)[..4], &(d.clone(),).abi_encode_params()[..]].concat()
}

const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const BOB: Address = address!("0000000000000000000000000000000000000b0b");
const ROUTER: Address = address!("e592427a0aece92de3edee1f18e0157c05861564");
const ROOT_AUTHORITY: B256 = B256::repeat_byte(0xff);

fn usdc(n: u64) -> U256 {
    U256::from(n) * U256::from(1_000_000u64)
}

fn policy_text(token: Address, manager: Address, delegator: Address) -> String {
    format!(
        r#"
name = "erc7710"
chains = [31337]
valid_for = "24h"
recipients = ["{ALICE}"]
[tokens]
USDC = {{ address = "{token}", decimals = 6 }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)", "approve(address,uint256)"]
[[limits]]
max = "200 USDC"
per = "day"
[approvals]
spenders = ["{ROUTER}"]
max = ["50 USDC"]
[gas]
max_fee_per_gas = "10 gwei"
max_gas_limit = 1000000
[delegations]
managers = ["{manager}"]
delegators = ["{delegator}"]
"#
    )
}

/// The framework on a fresh anvil: a DelegationManager and the stateless DeleGator every
/// delegator runs through EIP-7702.
struct Framework {
    manager: Address,
    delegator_impl: Address,
}

impl Framework {
    async fn deploy(anvil: &Anvil) -> Framework {
        let owner = anvil.deployer().await;
        let mut code = metamask_bytecode("DelegationManager");
        code.extend(owner.abi_encode());
        let manager = anvil.deploy(code).await;
        let mut code = metamask_bytecode("EIP7702StatelessDeleGator");
        code.extend((manager, bridle_common::userop::ENTRY_POINT_V07).abi_encode_params());
        let delegator_impl = anvil.deploy(code).await;
        assert!(!anvil.code(manager).await.is_empty() && !anvil.code(delegator_impl).await.is_empty());
        Framework { manager, delegator_impl }
    }

    /// An EOA that runs the DeleGator (its EIP-7702 delegation designator).
    async fn delegator(&self, anvil: &Anvil, who: &Actor) {
        let designator = [&[0xef, 0x01, 0x00][..], self.delegator_impl.as_slice()].concat();
        anvil.rpc("anvil_setCode", json!([who.address, Bytes::from(designator)])).await;
    }

    /// `delegator` delegates to `delegate` (no caveats), signed as the manager checks it:
    /// EIP-712 over the manager's domain, the hash computed by the manager itself.
    async fn delegate(&self, anvil: &Anvil, delegator: &Actor, delegate: Address, salt: u64) -> Delegation {
        let mut d = Delegation {
            delegate,
            delegator: delegator.address,
            authority: ROOT_AUTHORITY,
            caveats: vec![],
            salt: U256::from(salt),
            signature: Bytes::new(),
        };
        let hash = B256::from_slice(&anvil.view(self.manager, get_delegation_hash(&d)).await);
        let domain = B256::from_slice(&anvil.view(self.manager, getDomainHashCall {}.abi_encode()).await);
        let digest = keccak256([&[0x19, 0x01][..], domain.as_slice(), hash.as_slice()].concat());
        let key = k256::ecdsa::SigningKey::from(&delegator.secret);
        let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(27 + recid.to_byte());
        d.signature = bytes.into();
        d
    }
}

/// A transaction from the session to `to` with `data`, at `nonce`.
fn tx(to: Address, data: Vec<u8>, nonce: u64) -> SignPayload {
    SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
        chain_id: 31337,
        nonce,
        max_fee_per_gas: 5_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 600_000,
        to: Some(to),
        value: U256::ZERO,
        data: data.into(),
        access_list: vec![],
    }))
}

/// Sign through the host and broadcast; the receipt (status 1 asserted).
async fn sign_and_send(s: &Stack, g: &Granted, anvil: &Anvil, payload: SignPayload) -> Value {
    let (c, v) = s.sign_payload(g, payload).await;
    assert_eq!(c, 200, "{v}");
    let raw = &v["raw_transaction"];
    assert_eq!(recover_raw(&hex::decode(raw.as_str().unwrap().trim_start_matches("0x")).unwrap()), g.session);
    let hash = anvil.rpc("eth_sendRawTransaction", json!([raw])).await;
    let r = anvil.receipt(&hash).await;
    assert_eq!(r["status"], "0x1", "the redemption reverted: {r}");
    r
}

#[tokio::test]
async fn a_session_redeems_a_delegation_within_its_policy() {
    let anvil = Anvil::start();
    let fw = Framework::deploy(&anvil).await;
    let token = anvil.deploy_erc20().await;
    let (d1, d2) = (Actor::random(), Actor::random());
    for d in [&d1, &d2] {
        fw.delegator(&anvil, d).await;
        anvil.mint(token, d.address, usdc(1_000)).await;
    }
    let s = Stack::start();
    let text = policy_text(token, fw.manager, d1.address);
    let g = s.grant(&Actor::random(), &Actor::random(), &policy(&text)).await.expect("grant");
    anvil.set_balance(g.session, U256::from(10u64).pow(U256::from(19))).await;
    let delegation = fw.delegate(&anvil, &d1, g.session, 1).await;
    let transfer = |to: Address, n: u64| transfer_data(to, usdc(n)).to_vec();
    let redeem = |d: &Delegation, mode, exec: Vec<u8>| encode_redemption(&[(vec![d.clone()], mode, exec)]);

    // 60 USDC from the delegator to Alice: signed, mined, moved from the delegator.
    let r = redeem(&delegation, MODE_SINGLE, single_execution(token, U256::ZERO, &transfer(ALICE, 60)));
    sign_and_send(&s, &g, &anvil, tx(fw.manager, r, 0)).await;
    assert_eq!(anvil.token_balance(token, ALICE).await, usdc(60));
    assert_eq!(anvil.token_balance(token, d1.address).await, usdc(940));

    // 150 more would take the session past its 200 USDC a day, whoever's tokens they are.
    let r = redeem(&delegation, MODE_SINGLE, single_execution(token, U256::ZERO, &transfer(ALICE, 150)));
    let (c, v) = s.sign_payload(&g, tx(fw.manager, r, 1)).await;
    assert_eq!((c, code(&v)), (403, "spend_cap"), "{v}");
    // Bob is not a recipient the policy allows.
    let r = redeem(&delegation, MODE_SINGLE, single_execution(token, U256::ZERO, &transfer(BOB, 1)));
    let (c, v) = s.sign_payload(&g, tx(fw.manager, r, 1)).await;
    assert_eq!((c, code(&v)), (403, "recipient_not_allowed"), "{v}");

    // A batch: approve the router (held by the delegator, in the registry) and pay Alice.
    let batch = batch_execution(&[
        (token, U256::ZERO, approve_data(ROUTER, usdc(40))),
        (token, U256::ZERO, transfer(ALICE, 40).into()),
    ]);
    sign_and_send(&s, &g, &anvil, tx(fw.manager, redeem(&delegation, MODE_BATCH, batch), 1)).await;
    assert_eq!(anvil.allowance(token, d1.address, ROUTER).await, usdc(40));
    assert_eq!(anvil.token_balance(token, ALICE).await, usdc(100));
    let a = s.allowances(&g).await;
    let entries = a["allowances"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{a}");
    assert_eq!(entries[0]["holder"], json!(d1.address), "held by the delegator: {a}");
    assert_eq!(entries[0]["spender"], json!(ROUTER), "{a}");

    // Revoking it through the delegation is allowed and works on chain; but a redemption
    // can be mined and revert at the agent's will (another entry's bad signature), so the
    // enclave counts its revocations as nothing: the registry keeps the 40 (RULES.md §5b).
    let r = redeem(&delegation, MODE_SINGLE, single_execution(token, U256::ZERO, &approve_data(ROUTER, U256::ZERO)));
    sign_and_send(&s, &g, &anvil, tx(fw.manager, r, 2)).await;
    assert_eq!(anvil.allowance(token, d1.address, ROUTER).await, U256::ZERO);
    let a = s.allowances(&g).await;
    assert_eq!(a["allowances"][0]["amount"], json!(usdc(40)), "{a}");
    // A router call run as the delegator could spend its standing allowances: refused,
    // whatever the policy allows the session itself.
    let swap = single_execution(ROUTER, U256::ZERO, &[0x41, 0x4b, 0xf3, 0x89]);
    let (c, v) = s.sign_payload(&g, tx(fw.manager, redeem(&delegation, MODE_SINGLE, swap), 3)).await;
    assert_eq!((c, code(&v)), (403, "selector_not_allowed"), "{v}");
}

#[tokio::test]
async fn redemptions_the_policy_does_not_cover_are_refused() {
    let anvil = Anvil::start();
    let fw = Framework::deploy(&anvil).await;
    let other = Framework::deploy(&anvil).await;
    let token = anvil.deploy_erc20().await;
    let (d1, d2) = (Actor::random(), Actor::random());
    for d in [&d1, &d2] {
        fw.delegator(&anvil, d).await;
        anvil.mint(token, d.address, usdc(1_000)).await;
    }
    let s = Stack::start();
    let g = s
        .grant(&Actor::random(), &Actor::random(), &policy(&policy_text(token, fw.manager, d1.address)))
        .await
        .expect("grant");
    let exec = single_execution(token, U256::ZERO, &transfer_data(ALICE, usdc(1)));
    let deny = |manager: Address, data: Vec<u8>, want: &'static str, rule: &'static str| {
        let (s, g) = (&s, &g);
        async move {
            let (c, v) = s.sign_payload(g, tx(manager, data, 0)).await;
            assert_eq!((c, code(&v), v["error"]["rule"].as_str().unwrap_or_default()), (403, want, rule), "{v}");
        }
    };

    // Another manager (a real DelegationManager the policy does not list).
    let d = fw.delegate(&anvil, &d1, g.session, 1).await;
    deny(
        other.manager,
        encode_redemption(&[(vec![d.clone()], MODE_SINGLE, exec.clone())]),
        "target_not_allowed",
        "delegations.managers",
    )
    .await;
    // A delegator the policy does not list.
    let d_other = fw.delegate(&anvil, &d2, g.session, 1).await;
    deny(
        fw.manager,
        encode_redemption(&[(vec![d_other], MODE_SINGLE, exec.clone())]),
        "target_not_allowed",
        "delegations.delegators",
    )
    .await;
    // Try mode (a failing approve(0) would be skipped) and delegatecall mode.
    let mut try_mode = MODE_SINGLE;
    try_mode[1] = 1;
    deny(
        fw.manager,
        encode_redemption(&[(vec![d.clone()], try_mode, exec.clone())]),
        "argument_rejected",
        "delegations",
    )
    .await;
    let mut delegatecall = MODE_SINGLE;
    delegatecall[0] = 0xff;
    deny(
        fw.manager,
        encode_redemption(&[(vec![d.clone()], delegatecall, exec.clone())]),
        "argument_rejected",
        "delegations",
    )
    .await;
    // The delegator calling itself (its own execute would run calls nobody checked).
    let hidden = single_execution(d1.address, U256::ZERO, &[0xe9, 0xae, 0x5c, 0x53]);
    deny(fw.manager, encode_redemption(&[(vec![d.clone()], MODE_SINGLE, hidden)]), "target_not_allowed", "calls").await;
    // A nested redemption.
    let nested = encode_redemption(&[(vec![d.clone()], MODE_SINGLE, exec.clone())]);
    let outer = single_execution(fw.manager, U256::ZERO, &nested);
    deny(
        fw.manager,
        encode_redemption(&[(vec![d.clone()], MODE_SINGLE, outer)]),
        "selector_not_allowed",
        "delegations",
    )
    .await;
    // An empty permission context (the session would run it itself: it reverts).
    deny(fw.manager, encode_redemption(&[(vec![], MODE_SINGLE, exec.clone())]), "argument_rejected", "delegations")
        .await;
    // A delegation to someone else (the manager would revert).
    let to_bob = fw.delegate(&anvil, &d1, BOB, 2).await;
    deny(fw.manager, encode_redemption(&[(vec![to_bob], MODE_SINGLE, exec)]), "argument_rejected", "delegations").await;
    // Nothing was signed, nothing moved.
    assert_eq!(anvil.token_balance(token, ALICE).await, U256::ZERO);
}
