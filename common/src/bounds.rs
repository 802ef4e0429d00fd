//! Hard bounds checked before any decoder sees attacker-controlled input (review finding 2).
//!
//! The enclave parses a request before it can authenticate it (the stamp covers the digest
//! the enclave computes from the parsed request), so anything that reaches a parser whose
//! recursion or allocation follows the input's structure must first be bounded here,
//! iteratively: nesting depth, counts, lengths. A stack overflow aborts the whole enclave —
//! every session key with it — and no `catch_unwind` can stop that.

use crate::error::{Denial, ErrorCode};
use serde_json::Value;

/// Deepest JSON nesting of a typed-data document (objects and arrays).
pub const MAX_JSON_DEPTH: usize = 32;
/// Most struct types in `types`, fields per struct, and array dimensions of a field type.
pub const MAX_STRUCTS: usize = 64;
pub const MAX_FIELDS: usize = 64;
pub const MAX_ARRAY_DIMS: usize = 4;
/// Longest type or field name.
pub const MAX_TYPE_NAME: usize = 256;
/// Deepest chain of struct types referring to struct types.
pub const MAX_STRUCT_DEPTH: usize = 8;
/// Most JSON values in all (objects, arrays and scalars) of a typed-data document.
pub const MAX_JSON_VALUES: usize = 16_384;

fn too(reason: String) -> Denial {
    Denial::new(ErrorCode::TooLarge, reason)
}

fn bad(reason: impl Into<String>) -> Denial {
    Denial::malformed(format!("typed data: {}", reason.into()))
}

/// The deepest nesting of `[`/`{` in JSON text, outside strings: one pass, no recursion.
pub fn json_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Check JSON text's nesting before it is parsed at all.
pub fn check_json_depth(text: &str, what: &str) -> Result<(), Denial> {
    let d = json_depth(text);
    if d > MAX_JSON_DEPTH {
        return Err(too(format!("{what} nests {d} levels deep; at most {MAX_JSON_DEPTH}")));
    }
    Ok(())
}

/// Count the values of a parsed document (iteratively).
fn count_values(v: &Value) -> usize {
    let mut n = 0;
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        n += 1;
        if n > MAX_JSON_VALUES {
            return n;
        }
        match x {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    n
}

const ELEMENTARY_PREFIXES: [&str; 3] = ["uint", "int", "bytes"];

fn elementary(base: &str) -> bool {
    matches!(base, "address" | "bool" | "string" | "bytes")
        || ELEMENTARY_PREFIXES.iter().any(|p| {
            base.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()))
        })
}

/// Split `Base[2][]` into (`Base`, dimensions), within bounds.
fn split_type(t: &str) -> Result<(&str, usize), Denial> {
    if t.is_empty() || t.len() > MAX_TYPE_NAME {
        return Err(bad(format!("a field type of {} bytes (1 to {MAX_TYPE_NAME})", t.len())));
    }
    let base_end = t.find('[').unwrap_or(t.len());
    let (base, mut rest) = t.split_at(base_end);
    let mut dims = 0;
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return Err(bad(format!("type `{t}` has a bad array dimension")));
        }
        let close = rest.find(']').ok_or_else(|| bad(format!("type `{t}` has an unclosed `[`")))?;
        let n = &rest[1..close];
        if !n.bytes().all(|c| c.is_ascii_digit()) || n.len() > 6 {
            return Err(bad(format!("type `{t}` has a bad array dimension")));
        }
        dims += 1;
        if dims > MAX_ARRAY_DIMS {
            return Err(too(format!("type `{t}` has more than {MAX_ARRAY_DIMS} array dimensions")));
        }
        rest = &rest[close + 1..];
    }
    if base.is_empty() || !base.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$') {
        return Err(bad(format!("type `{t}` has no valid base type name")));
    }
    Ok((base, dims))
}

/// Bound an `eth_signTypedData_v4` document before alloy parses it: JSON depth (from the
/// text), value count, the `types` table (struct and field counts, names, array dimensions,
/// every referenced type declared, struct nesting depth and no cycles).
pub fn typed_data(text: &str) -> Result<Value, Denial> {
    check_json_depth(text, "typed data")?;
    let mut v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    // A JSON string holding the document (as some wallets send it).
    if let Value::String(inner) = &v {
        check_json_depth(inner, "typed data")?;
        v = serde_json::from_str(inner).map_err(|e| bad(e.to_string()))?;
    }
    if count_values(&v) > MAX_JSON_VALUES {
        return Err(too(format!("typed data has more than {MAX_JSON_VALUES} JSON values")));
    }
    let types = v.get("types").and_then(Value::as_object).ok_or_else(|| bad("no `types` object"))?;
    if types.len() > MAX_STRUCTS {
        return Err(too(format!("{} struct types; at most {MAX_STRUCTS}", types.len())));
    }
    let mut refs: Vec<(&str, Vec<&str>)> = Vec::with_capacity(types.len());
    for (name, fields) in types {
        if name.is_empty() || name.len() > MAX_TYPE_NAME {
            return Err(bad(format!("a struct name of {} bytes (1 to {MAX_TYPE_NAME})", name.len())));
        }
        let fields = fields.as_array().ok_or_else(|| bad(format!("type `{name}` is not a list of fields")))?;
        if fields.len() > MAX_FIELDS {
            return Err(too(format!("type `{name}` has {} fields; at most {MAX_FIELDS}", fields.len())));
        }
        let mut uses = Vec::new();
        for f in fields {
            let fname =
                f.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("a field of `{name}` has no name")))?;
            let ftype =
                f.get("type").and_then(Value::as_str).ok_or_else(|| bad(format!("field `{fname}` has no type")))?;
            if fname.len() > MAX_TYPE_NAME {
                return Err(bad(format!("field name of {} bytes (at most {MAX_TYPE_NAME})", fname.len())));
            }
            let (base, _) = split_type(ftype)?;
            if !elementary(base) {
                if !types.contains_key(base) {
                    return Err(bad(format!("type `{base}` (field `{fname}` of `{name}`) is not declared")));
                }
                uses.push(base);
            }
        }
        refs.push((name.as_str(), uses));
    }
    // Struct nesting depth, iteratively, with cycle detection: Kahn-style layering from
    // structs that use no struct.
    let index = |n: &str| refs.iter().position(|(k, _)| *k == n);
    let mut depth = vec![0usize; refs.len()];
    let mut done = vec![false; refs.len()];
    for _round in 0..=refs.len() {
        let mut progressed = false;
        for i in 0..refs.len() {
            if done[i] {
                continue;
            }
            let children: Vec<usize> = refs[i].1.iter().filter_map(|u| index(u)).collect();
            if children.iter().all(|&c| done[c]) {
                depth[i] = children.iter().map(|&c| depth[c] + 1).max().unwrap_or(0);
                if depth[i] > MAX_STRUCT_DEPTH {
                    return Err(too(format!(
                        "struct `{}` nests structs {} deep; at most {MAX_STRUCT_DEPTH}",
                        refs[i].0, depth[i]
                    )));
                }
                done[i] = true;
                progressed = true;
            }
        }
        if !progressed {
            break;
        }
    }
    if let Some(i) = done.iter().position(|d| !d) {
        return Err(bad(format!("struct `{}` refers to itself (a cycle of types)", refs[i].0)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(field_type: &str) -> String {
        format!(
            r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}}],"A":[{{"name":"a","type":"{field_type}"}}]}},"primaryType":"A","domain":{{"name":"x"}},"message":{{"a":1}}}}"#
        )
    }

    #[test]
    fn the_review_crash_is_refused_before_any_parser() {
        // `uint256` followed by 16 000 `[]`: alloy's type parser recursed until the stack
        // overflowed and the enclave aborted.
        let t = format!("uint256{}", "[]".repeat(16_000));
        let e = typed_data(&doc(&t)).unwrap_err();
        assert!(matches!(e.code, ErrorCode::Malformed | ErrorCode::TooLarge), "{e}");
        let e = typed_data(&doc(&format!("uint256{}", "[]".repeat(5)))).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
        typed_data(&doc("uint256[][2][]")).unwrap();
    }

    #[test]
    fn a_closing_bracket_after_a_dimension_is_refused_not_a_panic() {
        // Found by the `parse_and_classify_never_panic` property test: after `[]`, a `]`
        // where a `[` must come sliced `rest[1..0]` and panicked (before authentication).
        for t in ["a[]]]zhzm]]D_", "uint256[]]", "uint8[2]]x", "A[]x]"] {
            let e = typed_data(&doc(t)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Malformed, "{t}: {e}");
        }
    }

    #[test]
    fn deep_json_and_deep_structs_are_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(typed_data(&deep).unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(json_depth(r#"{"a":"[[[[[[[[[[[[["}"#), 1);
        // A chain of 10 structs, each using the next.
        let mut types = String::from(r#""EIP712Domain":[]"#);
        for i in 0..10 {
            types.push_str(&format!(r#","S{i}":[{{"name":"x","type":"S{}"}}]"#, i + 1));
        }
        types.push_str(r#","S10":[{"name":"x","type":"uint8"}]"#);
        let text = format!(r#"{{"types":{{{types}}},"primaryType":"S0","domain":{{}},"message":{{}}}}"#);
        assert_eq!(typed_data(&text).unwrap_err().code, ErrorCode::TooLarge);
        // Cycles.
        let cyc = r#"{"types":{"A":[{"name":"b","type":"B"}],"B":[{"name":"a","type":"A[]"}]},"primaryType":"A","domain":{},"message":{}}"#;
        assert_eq!(typed_data(cyc).unwrap_err().code, ErrorCode::Malformed);
        let undeclared = doc("Missing");
        assert_eq!(typed_data(&undeclared).unwrap_err().code, ErrorCode::Malformed);
    }
}
