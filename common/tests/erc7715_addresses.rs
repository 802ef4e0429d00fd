//! An ERC-7715 grant's token address in mixed case must carry a valid EIP-55 checksum, as
//! addresses in policy files must: a mistyped character names another token, and the policy
//! `from-erc7715` writes lists it checksummed — the slip would vanish from the owner's view.

use bridle_common::erc7715::map;
use serde_json::json;

const NOW: u64 = 1_800_000_000;

fn grant(token: &str) -> String {
    json!([{"chainId": 1, "expiry": NOW + 3600, "permissions": [{"type": "erc20-token-periodic",
        "data": {"tokenAddress": token, "periodAmount": "10000000", "periodDuration": 86400, "startTime": NOW}}]}])
    .to_string()
}

#[test]
fn a_checksummed_token_address_maps() {
    let usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let m = map(&grant(usdc), &[], NOW, None).unwrap();
    assert!(m.toml.to_lowercase().contains(&usdc.to_lowercase()), "{}", m.toml);
    let lower = map(&grant(&usdc.to_lowercase()), &[], NOW, None).unwrap();
    assert!(lower.toml.to_lowercase().contains(&usdc.to_lowercase()), "{}", lower.toml);
}

#[test]
fn a_mixed_case_token_address_whose_checksum_fails_is_not_mapped() {
    // USDC with one letter's case flipped (…eB48 → …eb48 keeps the digits, breaks EIP-55).
    let slipped = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eb48";
    let m = map(&grant(slipped), &[], NOW, None).unwrap();
    assert!(
        !m.toml.to_lowercase().contains(&slipped.to_lowercase()),
        "a token whose checksum fails was written into the policy:\n{}",
        m.toml
    );
    assert!(m.notes.iter().any(|n| n.contains("checksum") && n.contains("not mapped")), "{:?}", m.notes);
    assert!(m.notes.iter().any(|n| n.contains("no spending permission was mapped")), "{:?}", m.notes);
}

#[test]
fn a_token_address_that_is_not_an_address_is_named() {
    let m = map(&grant("0x1234"), &[], NOW, None).unwrap();
    assert!(m.notes.iter().any(|n| n.contains("not an address")), "{:?}", m.notes);
}
