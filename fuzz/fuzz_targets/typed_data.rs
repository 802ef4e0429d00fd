//! EIP-712 typed data, structure-aware: type tables with nested structs and array
//! dimensions (up to thousands of `[]`), messages nested deep, raw JSON too. Parsed,
//! classified and decided under a policy with typed-data and permit rules. Never panics,
//! never overflows the stack, never signs without a valid stamp.
#![no_main]
use arbitrary::{Arbitrary, Unstructured};
use bridle_common::payload::prepare;
use bridle_common::policy::{file::resolve_text, CompiledPolicy, Context, Counters};
use bridle_common::protocol::SignPayload;
use libfuzzer_sys::fuzz_target;
use std::fmt::Write;
use std::sync::OnceLock;

// `uint1` and `bytes33`: names alloy resolves as structs, not elementary types.
const NAMES: [&str; 10] =
    ["EIP712Domain", "Permit", "PermitSingle", "PermitDetails", "Order", "A", "B", "OwnerAction", "uint1", "bytes33"];
// Primary types beyond the declared names: tuples, arrays and elementary types.
const PRIMARIES: [&str; 6] = ["(A,B)", "(A,A,A,A)", "A[]", "bytes32", "uint8[][]", "uint"];
const ELEMS: [&str; 9] = ["uint256", "uint8", "int64", "address", "bool", "string", "bytes", "bytes32", "uint160"];

fn policy() -> &'static CompiledPolicy {
    static P: OnceLock<CompiledPolicy> = OnceLock::new();
    P.get_or_init(|| {
        let text = r#"
name = "fuzz"
chains = [1]
valid_until = 1900000000
max_duration = "3650 days"
[tokens]
USDC = { address = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", decimals = 6 }
[approvals]
spenders = ["0xe592427a0aece92de3edee1f18e0157c05861564"]
max = ["100 USDC"]
[[permits]]
kind = "eip2612"
max_deadline = "1h"
[[permits]]
kind = "permit2"
max_deadline = "1h"
[[typed_data]]
name = "X"
primary_type = "Order"
"#;
        CompiledPolicy::compile(resolve_text(text, 1_800_000_000).unwrap()).unwrap()
    })
}

fn value(u: &mut Unstructured<'_>, depth: u32, out: &mut String) -> arbitrary::Result<()> {
    match u.int_in_range(0..=6)? {
        0 if depth < 40 => {
            out.push('[');
            for i in 0..u.int_in_range(0..=3)? {
                if i > 0 {
                    out.push(',');
                }
                value(u, depth + 1, out)?;
            }
            out.push(']');
        }
        1 if depth < 40 => {
            out.push('{');
            for i in 0..u.int_in_range(0..=3)? {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "\"{}\":",
                    u.choose(&["a", "b", "owner", "spender", "value", "details", "token", "amount"])?
                );
                value(u, depth + 1, out)?;
            }
            out.push('}');
        }
        2 => {
            let _ = write!(out, "{}", u64::arbitrary(u)?);
        }
        3 => out.push_str(u.choose(&[
            "\"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48\"",
            "\"0x00\"",
            "true",
            "null",
            "\"1000000\"",
        ])?),
        4 => {
            // A very deep array, to probe the bounds.
            let n = u.int_in_range(0..=20_000)?;
            out.push_str(&"[".repeat(n));
            out.push('1');
            out.push_str(&"]".repeat(n));
        }
        _ => {
            let s = String::arbitrary(u)?;
            let _ = write!(out, "{}", serde_json::Value::String(s));
        }
    }
    Ok(())
}

fn doc(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    if bool::arbitrary(u)? {
        return String::arbitrary(u);
    }
    let mut s = String::from("{\"types\":{");
    let n = u.int_in_range(1..=6)?;
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "\"{}\":[", u.choose(&NAMES)?);
        // Up to 16 fields: wide enough for types that fan out when resolved.
        for j in 0..u.int_in_range(0..=16)? {
            if j > 0 {
                s.push(',');
            }
            let base = if bool::arbitrary(u)? { u.choose(&ELEMS)? } else { u.choose(&NAMES)? };
            let dims = match u.int_in_range(0..=3)? {
                0 => 0,
                1 => 1,
                2 => u.int_in_range(2..=5)?,
                _ => u.int_in_range(6..=30_000)?,
            };
            let _ = write!(
                s,
                "{{\"name\":\"{}\",\"type\":\"{base}{}\"}}",
                u.choose(&["a", "b", "owner", "spender", "value", "details", "token", "amount"])?,
                "[]".repeat(dims)
            );
        }
        s.push(']');
    }
    let primary = if u.ratio(1, 4)? { u.choose(&PRIMARIES)? } else { u.choose(&NAMES)? };
    let _ = write!(s, "}},\"primaryType\":\"{primary}\",\"domain\":");
    value(u, 0, &mut s)?;
    s.push_str(",\"message\":");
    value(u, 0, &mut s)?;
    s.push('}');
    Ok(s)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(json) = doc(&mut u) else { return };
    let payload = SignPayload::TypedData(json);
    if let Ok(prepared) = prepare(&payload) {
        let ctx = Context {
            now: 1_800_000_000,
            anchor: 1_800_000_000,
            owner: Default::default(),
            account: Default::default(),
        };
        let _ = prepared.evaluate(policy(), &Counters::new(), &ctx);
    }
});
