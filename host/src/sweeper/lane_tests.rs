use super::*;
use alloy_primitives::{address, B256, U256};
use bridle_common::allowance::AllowanceKind;
use bridle_common::protocol::{ChainNonce, SessionState};

/// The address of the secret key `[0x11; 32]` (the sweeper's tests sign as the session).
pub(crate) const SESSION: Address = address!("19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A");
const TOKEN: Address = address!("2222222222222222222222222222222222222222");
pub(crate) const ROUTER: Address = address!("3333333333333333333333333333333333333333");
const POOL: Address = address!("4444444444444444444444444444444444444444");

pub(crate) fn key(spender: Address, state: AllowanceState, swept_at: Option<u64>) -> Allowance {
    Allowance {
        chain_id: 1,
        token: TOKEN,
        spender,
        holder: SESSION,
        kind: AllowanceKind::Erc20,
        symbol: "USDC".into(),
        decimals: 6,
        amount: U256::from(100u64),
        granted_at: 10,
        expires_at: 20,
        onchain_until: None,
        state,
        via: "approve".into(),
        updated_at: 10,
        settled_at_nonce: None,
        swept_at_nonce: swept_at,
        cancelled_at_nonce: None,
    }
}

pub(crate) fn status(state: SessionState, allowances: Vec<Allowance>, next: u64) -> SessionStatus {
    SessionStatus {
        session: SESSION,
        owner: Address::ZERO,
        agent: Address::ZERO,
        policy_hash: B256::ZERO,
        state,
        created_at: 0,
        valid_after: None,
        valid_until: 0,
        uses: 0,
        uses_left: None,
        caps: vec![],
        suspended_reason: None,
        allowances,
        exposure: Default::default(),
        pending: vec![],
        time: 30,
        anchor: 0,
        next_nonces: vec![ChainNonce { chain_id: 1, nonce: next }],
        rate_limits: vec![],
    }
}

#[test]
fn a_new_sweep_starts_at_the_larger_of_the_nodes_pending_nonce_and_the_enclaves_next() {
    let st = status(SessionState::Active, vec![key(ROUTER, AllowanceState::Expired, None)], 7);
    // The agent signed up to nonce 6 and nothing of it is broadcast: below 7 the nonces hold
    // its transactions, which an unauthenticated sweep never replaces.
    assert_eq!(step(&st, 1, 3, 3), Step::Sweep(7));
    assert_eq!(step(&st, 1, 3, 9), Step::Sweep(9));
    // A chain the enclave signed nothing on starts at the node's nonce.
    let mut other = st.clone();
    other.next_nonces.clear();
    assert_eq!(step(&other, 1, 0, 2), Step::Sweep(2));
}

#[test]
fn a_signed_sweep_the_chain_has_not_reached_is_re_signed_at_its_own_nonce() {
    // Someone asked for a sweep at nonce 4 and never broadcast it: the enclave shows the
    // approval as swept, the chain's nonce is still 4.
    let st = status(SessionState::Active, vec![key(ROUTER, AllowanceState::Swept, Some(4))], 5);
    assert_eq!(step(&st, 1, 4, 4), Step::Resign(4));
    // The node's pool holds a transaction at 4 (another host broadcast the sweep, or this
    // one before a restart): wait for it instead of an underpriced re-sign.
    assert_eq!(step(&st, 1, 4, 5), Step::InPool(4));
    assert_eq!(chains(&st), vec![1]);
    // Mined (the nonce is used): nothing to do.
    assert_eq!(step(&st, 1, 5, 5), Step::Nothing);
    // Where sweeps never settle the key stays expired with its sweep's nonce: re-signed
    // while unmined, then a new sweep is asked for once (the enclave signs nothing more
    // without the owner: the sweeper then leaves the lane alone).
    let unsettled = status(SessionState::Active, vec![key(ROUTER, AllowanceState::Expired, Some(4))], 5);
    assert_eq!(step(&unsettled, 1, 4, 4), Step::Resign(4));
    assert_eq!(step(&unsettled, 1, 5, 5), Step::Sweep(5));
    // The lowest unmined one first (a re-sign from there re-signs the later ones too).
    let two = status(
        SessionState::Active,
        vec![key(ROUTER, AllowanceState::Swept, Some(6)), key(POOL, AllowanceState::Swept, Some(5))],
        7,
    );
    assert_eq!(step(&two, 1, 5, 5), Step::Resign(5));
    assert_eq!(step(&two, 1, 6, 6), Step::Resign(6));
}

#[test]
fn a_permit2_entrys_cancellation_is_followed_before_its_revocation() {
    // The owner's sweep cancelled the entry's permits at 4 and revoked it at 5; nobody
    // broadcast either. The cancellation first (the revocation waits behind it), then the
    // revocation once the cancellation is mined.
    let swept = Allowance { cancelled_at_nonce: Some(4), ..key(ROUTER, AllowanceState::Swept, Some(5)) };
    let st = status(SessionState::Active, vec![swept], 6);
    assert_eq!(step(&st, 1, 4, 4), Step::Resign(4));
    assert_eq!(step(&st, 1, 4, 6), Step::InPool(4));
    assert_eq!(step(&st, 1, 5, 5), Step::Resign(5));
    assert_eq!(step(&st, 1, 6, 6), Step::Nothing);
}

#[test]
fn what_is_current_or_revoked_by_the_agent_is_left_alone_until_the_session_ends() {
    let active = key(ROUTER, AllowanceState::Active, None);
    let revoked = key(POOL, AllowanceState::Revoked, Some(2));
    let st = status(SessionState::Active, vec![active.clone(), revoked.clone()], 3);
    assert_eq!(step(&st, 1, 3, 3), Step::Nothing);
    assert!(chains(&st).is_empty());
    // Revoked (by the owner) or suspended: every outstanding approval is due.
    for state in [SessionState::Revoked, SessionState::Suspended, SessionState::Expired] {
        let ended = status(state, vec![active.clone(), revoked.clone()], 3);
        assert_eq!(step(&ended, 1, 3, 3), Step::Sweep(3), "{state:?}");
        assert_eq!(chains(&ended), vec![1]);
    }
    // Approvals held by a smart account, or Permit2 signature transfers: not this lane's.
    let mut held = key(ROUTER, AllowanceState::Expired, None);
    held.holder = POOL;
    let mut transfer = key(ROUTER, AllowanceState::Expired, None);
    transfer.kind = AllowanceKind::SignatureTransfer { contract: POOL };
    let st = status(SessionState::Active, vec![held, transfer], 0);
    assert_eq!(step(&st, 1, 0, 0), Step::Nothing);
    assert!(chains(&st).is_empty());
}

#[test]
fn a_lanes_fingerprint_changes_with_the_keys_and_nonces_the_enclave_decides_on() {
    let base = status(SessionState::Active, vec![key(ROUTER, AllowanceState::Expired, Some(4))], 5);
    let f = Fingerprint::of(&base, 1);
    assert_eq!(f, Fingerprint::of(&base.clone(), 1));
    let mut changed = Vec::new();
    let mut s = base.clone();
    s.state = SessionState::Revoked;
    changed.push(s);
    let mut s = base.clone();
    s.next_nonces[0].nonce = 6;
    changed.push(s);
    let mut s = base.clone();
    s.allowances[0].updated_at = 11;
    changed.push(s);
    let mut s = base.clone();
    s.allowances[0].swept_at_nonce = Some(5);
    changed.push(s);
    let mut s = base.clone();
    s.allowances[0].state = AllowanceState::Swept;
    changed.push(s);
    let mut s = base.clone();
    s.allowances.push(key(POOL, AllowanceState::Active, None));
    changed.push(s);
    let mut s = base.clone();
    s.policy_hash = B256::repeat_byte(1);
    changed.push(s);
    let mut s = base.clone();
    s.allowances[0].kind = AllowanceKind::Permit2 { contract: POOL };
    changed.push(s);
    for s in changed {
        assert_ne!(Fingerprint::of(&s, 1), f, "{s:?}");
    }
    // Another chain's keys are not this lane's.
    let mut s = base.clone();
    let mut k = key(POOL, AllowanceState::Expired, None);
    k.chain_id = 10;
    s.allowances.push(k);
    assert_eq!(Fingerprint::of(&s, 1), f);
}
