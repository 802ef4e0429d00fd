//! Unit tests of the ERC-7715 mapping ([`super`]).

use super::*;
use crate::policy::file::resolve_text;
use crate::policy::CompiledPolicy;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn compile(m: &Mapped) -> CompiledPolicy {
    let doc = resolve_text(&m.toml, NOW).unwrap_or_else(|d| panic!("{d}\n{}", m.toml));
    CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("{d}\n{}", m.toml))
}

#[test]
fn metamask_native_stream_and_erc20_periodic() {
    let usdc = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238";
    let req = json!([
        {
            "chainId": "0xaa36a7",
            "expiry": NOW + 7 * 86_400,
            "signer": {"type": "account", "data": {"address": "0x1111111111111111111111111111111111111111"}},
            "permission": {"type": "native-token-stream", "data": {
                "initialAmount": "0x1", "amountPerSecond": "0x1", "maxAmount": "0xa", "startTime": NOW,
                "justification": "Payment for a week long subscription"
            }}
        },
        {
            "chainId": 11155111,
            "expiry": NOW + 86_400,
            "permission": {"type": "erc20-token-periodic", "data": {
                "tokenAddress": usdc, "periodAmount": "10000000", "periodDuration": 86400
            }}
        }
    ]);
    let known = [KnownToken { symbol: "USDC".into(), address: usdc.parse().unwrap(), decimals: 6 }];
    let m = map(&req.to_string(), &known, NOW, None).unwrap();
    let p = compile(&m);
    assert_eq!(p.doc.chains, vec![11155111]);
    assert_eq!(p.doc.valid_until, Some(NOW + 86_400)); // the earliest expiry
    assert_eq!(p.doc.streams.len(), 1);
    assert_eq!(p.doc.streams[0].max, U256::from(10));
    assert_eq!(p.doc.streams[0].rate, U256::from(1));
    assert_eq!(p.doc.limits.len(), 1);
    assert_eq!(p.doc.limits[0].max, U256::from(10_000_000u64));
    assert_eq!(p.doc.limits[0].period, crate::period::Period::Day);
    assert_eq!(p.doc.max_value_per_call, Some(U256::from(10)));
    assert!(m.notes.iter().any(|n| n.contains("signer")), "{:?}", m.notes);
}

#[test]
fn erc_shape_allowance_odd_period_and_unmappable() {
    let req = json!({
        "method": "wallet_grantPermissions",
        "params": [{
            "chainId": "0x1",
            "expiry": NOW + 3 * 86_400,
            "address": "0x2222222222222222222222222222222222222222",
            "signer": {"type": "keys", "data": {"keys": []}},
            "permissions": [
                {"type": "native-token-allowance", "data": {"allowanceAmount": "1000000000000000000"}},
                {"type": "native-token-periodic", "data": {"periodAmount": "0x2386f26fc10000", "periodDuration": 7200}},
                {"type": "erc20-token-stream", "data": {"tokenAddress": "0x3333333333333333333333333333333333333333", "amountPerSecond": "5"}},
                {"type": "contract-call", "data": {"address": "0x4444444444444444444444444444444444444444"}},
                {"type": "rate-limit", "data": {"count": 10, "interval": 3600}}
            ]
        }]
    });
    let m = map(&req.to_string(), &[], NOW, None).unwrap();
    let p = compile(&m);
    assert_eq!(p.doc.chains, vec![1]);
    assert_eq!(p.doc.max_duration, Some(3 * 86_400));
    assert_eq!(p.doc.limits[0].period, crate::period::Period::Session);
    assert_eq!(p.doc.limits[1].period, crate::period::Period::Day); // 2 h rounded up
    assert_eq!(p.doc.streams[0].max, U256::from(5u64 * 3 * 86_400));
    assert_eq!(p.doc.rate_limits[0].max, 10);
    let all = m.notes.join("\n");
    for want in ["contract-call", "7200 s", "TOKEN1", "address 0x2222", "maxAmount"] {
        assert!(all.contains(want), "missing note {want}:\n{all}");
    }
}

#[test]
fn a_period_maps_only_to_a_bridle_period_never_shorter() {
    // Calendar months are 28 to 31 days: a 30-day period as a month would let two
    // periods' amounts through within 30 days (anchored on 31 January, the second month
    // starts 28 days later).
    assert_eq!(period_for(2_419_200), ("month", false));
    for secs in [2_419_201, 2_592_000, 2_678_400] {
        assert_eq!(period_for(secs), ("session", false), "{secs} s");
    }
    assert_eq!(period_for(604_800), ("week", true));
    assert_eq!(period_for(86_400), ("day", true));
    let req = json!([{"chainId": 1, "expiry": NOW + 90 * 86_400, "permission": {"type": "native-token-periodic",
        "data": {"periodAmount": "100", "periodDuration": 2_592_000}}}]);
    let m = map(&req.to_string(), &[], NOW, None).unwrap();
    assert_eq!(compile(&m).doc.limits[0].period, crate::period::Period::Session, "{}", m.toml);
}

#[test]
fn refuses_what_cannot_be_a_policy() {
    assert!(map("not json", &[], NOW, None).is_err());
    assert!(map("[]", &[], NOW, None).is_err());
    assert!(map(&json!([{"expiry": NOW + 10}]).to_string(), &[], NOW, None).is_err());
}

#[test]
fn each_permission_stays_on_its_own_chain() {
    // Review finding 9: 10 USDC/day on chain 1 and 0.1 ETH/day on 8453 must not become a
    // policy allowing both on both chains.
    let usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let req = json!([
        {"chainId": 1, "expiry": NOW + 3600, "permissions": [{"type": "erc20-token-periodic",
            "data": {"tokenAddress": usdc, "periodAmount": "10000000", "periodDuration": 86400, "startTime": NOW}}]},
        {"chainId": 8453, "expiry": NOW + 3600, "permissions": [{"type": "native-token-periodic",
            "data": {"periodAmount": "100000000000000000", "periodDuration": 86400, "startTime": NOW}}]}
    ])
    .to_string();
    let e = map(&req, &[], NOW, None).unwrap_err();
    assert!(e.contains("on its own"), "{e}");
    let one = map(&req, &[], NOW, Some(8453)).unwrap();
    assert!(one.toml.contains("chains = [8453]"), "{}", one.toml);
    assert!(
        !one.toml.contains(&usdc.to_lowercase()) && !one.toml.to_lowercase().contains(&usdc.to_lowercase()),
        "{}",
        one.toml
    );
    assert!(one.notes.iter().any(|n| n.contains("chain 1")));
    let p = crate::policy::CompiledPolicy::compile(crate::policy::file::resolve_text(&one.toml, NOW).unwrap()).unwrap();
    assert_eq!(p.doc.chains, vec![8453]);
    assert!(map(&req, &[], NOW, Some(5)).is_err());
    assert!(map(&json!([{"chainId": 1, "expiry": NOW - 10}]).to_string(), &[], NOW, None).is_err());
}
