//! A review of 2026-12-07 (delegation): a small differential over random redemption *encodings* — the
//! shapes the model's `RedeemEntry` cannot express (chains of 0 to 10 delegations, leaf
//! delegates that are the session, `ANY_DELEGATE` or another, roots that are the session,
//! caveats with and without `args`, every ERC-7579 call and exec type, mode selector bytes,
//! empty batches, 1 to 18 entries, mismatched array lengths). The expected verdict is
//! computed from RULES §5b and MetaMask's DelegationManager v1.3 / DeleGatorCore semantics,
//! independently of `decode_redemption`; when it accepts, the entries it returns must be the
//! ones the DeleGator would run (root = last delegator; single = packed target ‖ value ‖
//! data; batch = Execution[]).

use alloy_primitives::{address, Address, Bytes, B256, U256};
use alloy_sol_types::SolValue;
use bridle_common::delegation::{decode_redemption, redeemDelegationsCall, Caveat, Delegation, ANY_DELEGATE};
use bridle_common::userop::erc7579::Execution;
use proptest::prelude::*;

const SESSION: Address = address!("00000000000000000000000000000000000000cc");
const OTHER: Address = address!("00000000000000000000000000000000000000ee");
const D1: Address = address!("000000000000000000000000000000000000d001");
const TOKEN: Address = address!("000000000000000000000000000000000000a0a0");

#[derive(Debug, Clone)]
struct GenEntry {
    chain: Vec<(u8, u8, bool)>, // (delegate kind, delegator kind, caveat with args)
    call_type: u8,
    exec_type: u8,
    selector_byte: bool,
    calls: Vec<(u8, u64, Vec<u8>)>,
}

fn who(k: u8) -> Address {
    match k % 4 {
        0 => SESSION,
        1 => ANY_DELEGATE,
        2 => OTHER,
        _ => D1,
    }
}

fn entry() -> impl Strategy<Value = GenEntry> {
    (
        prop_oneof![
            1 => prop::collection::vec((0u8..4, 0u8..4, prop::bool::weighted(0.1)), 0..11),
            3 => prop::collection::vec((prop::sample::select(vec![0u8, 0, 1, 2, 3]), 0u8..4, prop::bool::weighted(0.03)), 1..3),
        ],
        prop::sample::select(vec![0u8, 0, 1, 1, 0xfe, 0xff, 2]),
        prop::sample::select(vec![0u8, 0, 0, 1, 2]),
        prop::bool::weighted(0.1),
        prop::collection::vec((0u8..4, 0u64..3, prop::collection::vec(any::<u8>(), 0..40)), 0..4),
    )
        .prop_map(|(chain, call_type, exec_type, selector_byte, calls)| GenEntry {
            chain,
            call_type,
            exec_type,
            selector_byte,
            calls,
        })
}

fn target(k: u8) -> Address {
    match k % 4 {
        0 => TOKEN,
        1 => OTHER,
        2 => Address::ZERO,
        _ => D1,
    }
}

fn build(e: &GenEntry) -> (Vec<Delegation>, [u8; 32], Vec<u8>) {
    let chain: Vec<Delegation> = e
        .chain
        .iter()
        .enumerate()
        .map(|(i, &(dk, rk, args))| Delegation {
            delegate: who(dk),
            delegator: who(rk),
            authority: B256::repeat_byte(i as u8),
            caveats: if args || i % 3 == 0 {
                vec![Caveat {
                    enforcer: OTHER,
                    terms: Bytes::from(vec![1, 2, 3]),
                    args: if args { Bytes::from(vec![9]) } else { Bytes::new() },
                }]
            } else {
                vec![]
            },
            salt: U256::from(i),
            signature: Bytes::from(vec![0u8; 65]),
        })
        .collect();
    let mut mode = [0u8; 32];
    mode[0] = e.call_type;
    mode[1] = e.exec_type;
    if e.selector_byte {
        mode[6] = 0x01;
    }
    let exec = if e.call_type == 0 {
        match e.calls.first() {
            Some((t, v, d)) => [target(*t).as_slice(), &U256::from(*v).to_be_bytes::<32>(), d].concat(),
            None => vec![0u8; 30], // shorter than target ‖ value
        }
    } else {
        e.calls
            .iter()
            .map(|(t, v, d)| Execution { target: target(*t), value: U256::from(*v), callData: d.clone().into() })
            .collect::<Vec<_>>()
            .abi_encode()
    };
    (chain, mode, exec)
}

/// What RULES §5b says of one entry: `Some((root, calls))` accepted, `None` refused.
/// The calls a redemption runs: (target, value, data) each.
type Calls = Vec<(Address, U256, Vec<u8>)>;

fn expected(e: &GenEntry) -> Option<(Address, Calls)> {
    let leaf = e.chain.first()?;
    let root = e.chain.last()?;
    if e.chain.len() > 8 {
        return None;
    }
    if who(leaf.0) != SESSION && who(leaf.0) != ANY_DELEGATE {
        return None;
    }
    if who(root.1) == SESSION {
        return None;
    }
    if e.chain.iter().any(|c| c.2) {
        return None;
    }
    if e.exec_type != 0 || e.selector_byte {
        return None;
    }
    let calls: Vec<_> = match e.call_type {
        0 => {
            let (t, v, d) = e.calls.first()?;
            vec![(target(*t), U256::from(*v), d.clone())]
        }
        1 => e.calls.iter().map(|(t, v, d)| (target(*t), U256::from(*v), d.clone())).collect(),
        _ => return None,
    };
    if calls.is_empty() {
        return None;
    }
    Some((who(root.1), calls))
}

static ACCEPTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, .. ProptestConfig::default() })]
    #[test]
    fn decode_redemption_agrees_with_the_rules(entries in prop_oneof![1 => prop::collection::vec(entry(), 0..18), 4 => prop::collection::vec(entry(), 1..3)], drop_mode in prop::bool::weighted(0.05)) {
        let parts: Vec<_> = entries.iter().map(build).collect();
        let mut call = redeemDelegationsCall {
            permissionContexts: parts.iter().map(|p| p.0.abi_encode().into()).collect(),
            modes: parts.iter().map(|p| p.1.into()).collect(),
            executionCallDatas: parts.iter().map(|p| p.2.clone().into()).collect(),
        };
        if drop_mode && !call.modes.is_empty() {
            call.modes.pop();
        }
        let data = alloy_sol_types::SolCall::abi_encode(&call);
        let got = decode_redemption(&data, SESSION);
        let want: Option<Vec<_>> = if drop_mode || entries.is_empty() || entries.len() > 16 {
            None
        } else {
            entries.iter().map(expected).collect()
        };
        match (got, want) {
            (Ok(g), Some(w)) => {
                ACCEPTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);

                prop_assert_eq!(g.len(), w.len());
                for (ge, (root, calls)) in g.iter().zip(w) {
                    prop_assert_eq!(ge.root, root);
                    let gc: Vec<_> = ge.calls.iter().map(|c| (c.to.unwrap(), c.value, c.data.to_vec())).collect();
                    prop_assert_eq!(gc, calls);
                }
            }
            (Err(_), None) => {}

            (Ok(g), None) => prop_assert!(false, "accepted what §5b refuses: {:?}\n{:?}", entries, g),
            (Err(d), Some(_)) => prop_assert!(false, "refused what §5b accepts: {} — {:?}", d, entries),
        }
    }
}

/// The differential above must see accepted redemptions (run it with `--test-threads 1`
/// after it to read the count; here, a direct check that acceptance is reachable).
#[test]
fn an_accepted_shape_decodes() {
    let e = GenEntry {
        chain: vec![(0, 3, false), (2, 3, false)],
        call_type: 1,
        exec_type: 0,
        selector_byte: false,
        calls: vec![(0, 1, vec![1, 2, 3, 4]), (1, 0, vec![])],
    };
    let p = build(&e);
    let data = bridle_common::delegation::encode_redemption(&[p]);
    let g = decode_redemption(&data, SESSION).unwrap();
    assert_eq!(g[0].root, D1);
    assert_eq!(g[0].calls.len(), 2);
    let _ = ACCEPTED.load(std::sync::atomic::Ordering::Relaxed);
}
