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
    for f in ["usdc-daily.toml"] {
        let t = std::fs::read_to_string(format!("{}/../examples/policies/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        CompiledPolicy::compile(resolve_text(&t, 1_800_000_000).unwrap()).unwrap();
    }
}
