//! The canonical encoding is what owners sign and what the enclave hashes: a change in how
//! the document is held in memory must not change one byte of it. Two policies, one with
//! every optional section set and one with none, resolved from text at a fixed time; their
//! hashes are pinned here, as the build before the compact sections (67d1af8) computed
//! them, and decoding an encoding — JSON as owners hash it, CBOR as the enclave receives
//! it — gives it back.

use bridle_common::policy::file::resolve_text;
use bridle_common::policy::{CompiledPolicy, Policy};

const T0: u64 = 1_800_000_000;

const EVERYTHING: &str = r#"
name = "every-section"
chains = [1, 8453]
valid_for = "12h"
max_duration = "48h"
quota = 1000
max_value_per_call = "0.5 ETH"
recipients = ["0x00000000000000000000000000000000000a11ce", "$owner"]
exposure_ceiling = "5000 USD"
owner_exposure_ceiling = "20000 USD"
agent_exposure_ceiling = "10000 USD"
release_signers = ["0x010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101010101"]

[tokens]
USDC = { address = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", decimals = 6 }
WETH = { address = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", decimals = 18, chain_id = 1 }

[prices]
USDC = "1"
ETH = "3000"

[[limits]]
max = "100 USDC"
per = "day"

[[limits]]
max = "1 ETH"
per = "month"

[[streams]]
initial = "5 USDC"
rate = "1 USDC"
every = "1h"
max = "10 USDC"

[[calls]]
target = "USDC"
functions = [{ signature = "transfer(address,uint256)", args = [{ arg = 1, op = "lte", value = 50000000 }] }]

[[calls]]
target = "0xe592427a0aece92de3edee1f18e0157c05861564"
functions = ["exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))"]

[[rate_limits]]
max = 10
window = "1m"

[gas]
max_fee_per_gas = "50 gwei"
max_priority_fee_per_gas = "2 gwei"
max_gas_limit = 1000000
count_in_native = true
limits = [{ max = "0.1 ETH", per = "day" }]

[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["1000 USDC"]
lifetime = "1h"
jit = [{ signature = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))", amount_arg = "0.4", token_arg = "0.0" }]
jit_tolerance = "1%"
revoke_gas = 60000
execution_gas_chains = [1]

[user_operations]
entry_points = ["v0.7", "v0.8"]
paymasters = ["0x00000000000000000000000000000000000b0b00"]
factories = ["0x00000000000000000000000000000000000fac70"]
senders = ["0x0000000000000000000000000000000000005ca0"]
unmetered_calls = true

[delegations]
managers = ["0xdb9b1e94b5b69df7e401ddbede43491141047db3"]
delegators = ["0x00000000000000000000000000000000000de1e9"]

[escalate]
above_value = "40 USDC"
above_usd = "500 USD"
per = "day"
ttl = "1h"

[trip_wire]
denials = 5
within = "10m"
"#;

const NOTHING: &str = "name = \"bare\"\nchains = [1]\nvalid_for = \"1h\"\n";

fn check(text: &str, hash: &str) {
    let doc: Policy = resolve_text(text, T0).unwrap_or_else(|d| panic!("{d:?}"));
    let bytes = doc.canonical_bytes();
    println!("{}\n{}", String::from_utf8_lossy(&bytes), doc.hash());
    // Decoding the encoding gives the same document and the same bytes.
    let back: Policy = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back, doc);
    assert_eq!(back.canonical_bytes(), bytes);
    // The frame's encoding, decoded within its bound as the enclave decodes a call.
    let cbor = bridle_common::frame::to_cbor(&doc).unwrap();
    let framed: Policy = bridle_common::frame::from_cbor(&cbor).unwrap();
    assert_eq!(framed, doc);
    assert_eq!(framed.canonical_bytes(), bytes);
    // And the form the engine holds encodes the same.
    let compiled = CompiledPolicy::compile(back).unwrap_or_else(|d| panic!("{d:?}"));
    assert_eq!(compiled.doc.canonical_bytes(), bytes);
    assert_eq!(compiled.hash.to_string(), hash);
}

#[test]
fn a_policy_with_every_section_keeps_its_encoding() {
    check(EVERYTHING, "0x7cbf51685055c946dfb788f77939b60ab26f8fe543b9554f7e623e86b8061fca");
}

#[test]
fn a_policy_with_no_optional_section_keeps_its_encoding() {
    check(NOTHING, "0xcf60dc5585d989b4423a3f0d02c568cb83435d1c8e10a75f1ba479228ec77ca5");
}
