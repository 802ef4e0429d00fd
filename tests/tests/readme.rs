//! The README's policy example is real: it parses, resolves and compiles, and every rule
//! kind it shows is present in the normalized document.

use bridle_common::policy::file::resolve_text;
use bridle_common::policy::CompiledPolicy;

#[test]
fn readme_policy_example_compiles() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let text = &readme[start..end];
    let doc = resolve_text(text, 1_800_000_000).unwrap_or_else(|d| panic!("README policy: {d}"));
    let p = CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("README policy: {d}"));
    let d = &p.doc;
    assert!(d.valid_until.is_some() && d.valid_after.is_some() && d.max_duration.is_some() && d.quota.is_some());
    assert_eq!(d.tokens.len(), 2);
    assert_eq!(d.limits.len(), 2);
    assert_eq!(d.streams.len(), 1);
    assert_eq!(d.calls.len(), 2);
    assert_eq!(d.calls[0].functions[1].args.len(), 2);
    assert_eq!(d.recipients.as_ref().map(Vec::len), Some(2));
    assert_eq!(d.rate_limits.len(), 1);
    assert!(d.gas.max_fee_per_gas.is_some() && d.gas.count_in_native && d.gas.cost_limits.len() == 1);
    assert_eq!(d.approvals.spenders.len(), 1);
    assert_eq!(d.approvals.caps.len(), 1);
    // The second block (user operations, typed data, permits, messages) compiles on top of
    // a header that lists the token and the approval rules it refers to.
    let rest = &readme[end..];
    let s2 = rest.find("```toml\n").expect("a second toml block") + "```toml\n".len();
    let e2 = s2 + rest[s2..].find("```").unwrap();
    let header = "name = 'surface'\nchains = [8453]\nvalid_for = '1h'\n\
        tokens = { USDC = { address = '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913', decimals = 6 } }\n\
        approvals = { spenders = ['0x000000000022D473030F116dDEE9F6B43aC78BA3'], max = ['100 USDC'] }\n";
    let doc = resolve_text(&format!("{header}{}", &rest[s2..e2]), 1_800_000_000)
        .unwrap_or_else(|d| panic!("README block 2: {d}"));
    let p2 = CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("README block 2: {d}"));
    assert_eq!(p2.doc.permits.len(), 2);
    assert_eq!(p2.doc.messages.len(), 3);
    assert_eq!(p2.doc.typed_data.len(), 1);

    // The third block (governance: prices, exposure ceiling, escalation, trip-wire, JIT)
    // compiles on top of a header with the tokens it names.
    let rest3 = &rest[e2..];
    let s3 = rest3.find("```toml\n").expect("a third toml block") + "```toml\n".len();
    let e3 = s3 + rest3[s3..].find("```").unwrap();
    let block3 = &rest3[s3..e3];
    let (top, tables) = block3.split_at(block3.find("[approvals]").unwrap());
    let header3 = "name = 'governance'\nchains = [1]\nvalid_for = '1h'\n";
    let tokens3 = "\n[tokens]\nUSDC = { address = '0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48', decimals = 6 }\n\
        WETH = { address = '0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2', decimals = 18 }\n";
    let doc = resolve_text(&format!("{header3}{top}{tokens3}{tables}"), 1_800_000_000)
        .unwrap_or_else(|d| panic!("README block 3: {d}"));
    CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("README block 3: {d}"));

    // Every example policy compiles too.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let t = std::fs::read_to_string(&path).unwrap();
        let doc = resolve_text(&t, 1_800_000_000).unwrap_or_else(|d| panic!("{}: {d}", path.display()));
        CompiledPolicy::compile(doc).unwrap_or_else(|d| panic!("{}: {d}", path.display()));
    }
}
