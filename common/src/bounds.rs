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
/// Most JSON values in all (objects, arrays and scalars) of a typed-data document,
/// counted in its text before it is parsed: each is a node of the JSON tree (a permit
/// batch as large as the 64 KiB text allows, ≈ 600 details, fits).
pub const MAX_JSON_VALUES: usize = 4_096;
/// Most objects in a typed-data message: each may become a struct value, kept (coerced)
/// while the request is served.
pub const MAX_MESSAGE_OBJECTS: usize = 1_024;
/// Most bytes a struct type takes once resolved (alloy expands a type into a tree that
/// repeats every struct it uses, with its names, each time it is used: 2 KB of `types`
/// made a 9.5 MB type and 890 MB of memory before this bound; see [`TypeCost`]).
pub const MAX_RESOLVED_TYPE: usize = 256 * 1024;
/// Most work the message's structs may cause: each struct value in the message repeats
/// its type's names when coerced and rebuilds its type's `encodeType` string when hashed,
/// so (objects in the message) × (the largest of those per-struct costs) is bounded.
pub const MAX_STRUCT_WORK: usize = 4 * 1024 * 1024;

/// What a struct type costs (an upper bound, in bytes) once alloy has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeCost {
    /// The type resolved to a `DynSolType` tree, every struct it uses expanded.
    pub resolved: usize,
    /// One value of the type coerced (its own names and slots, not its fields' values).
    pub per_value: usize,
    /// Its `encodeType` string: its own and every struct it uses, once each.
    pub encode_type: usize,
}

/// Bytes one field adds to a struct's resolved type or coerced value: its name as a
/// `String`, its type or value slot, and the allocator's rounding.
const FIELD_OVERHEAD: usize =
    std::mem::size_of::<String>() + 2 * std::mem::size_of::<alloy_dyn_abi::DynSolValue>() + 32;
/// Bytes a struct itself adds (its name and vectors), and an array dimension.
const STRUCT_OVERHEAD: usize =
    3 * std::mem::size_of::<Vec<u8>>() + std::mem::size_of::<alloy_dyn_abi::DynSolType>() + 64;

fn too(reason: String) -> Denial {
    Denial::new(ErrorCode::TooLarge, reason)
}

fn bad(reason: impl Into<String>) -> Denial {
    Denial::malformed(format!("typed data: {}", reason.into()))
}

/// The deepest nesting of `[`/`{` in JSON text, outside strings: one pass, no recursion.
pub fn json_depth(text: &str) -> usize {
    scan(text).0
}

/// One pass over JSON text, outside strings: the deepest nesting of `[`/`{`, and a bound
/// on how many values it holds (every value but the first follows a `[`, a `{` or a `,`:
/// exact unless a container is empty).
fn scan(text: &str) -> (usize, usize) {
    let (mut depth, mut max, mut values, mut in_str, mut esc) = (0usize, 0usize, 1usize, false, false);
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
                values += 1;
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' => values += 1,
            _ => {}
        }
    }
    (max, values)
}

/// Check typed-data text's nesting and its count of values before it is parsed at all:
/// the JSON tree of 4 096 values is ≈ 1 MB, of 64 KiB of `[{"":0},…]` ≈ 6 MB.
fn check_typed_text(text: &str) -> Result<(), Denial> {
    let (depth, values) = scan(text);
    if depth > MAX_JSON_DEPTH {
        return Err(too(format!("typed data nests {depth} levels deep; at most {MAX_JSON_DEPTH}")));
    }
    if values > MAX_JSON_VALUES {
        return Err(too(format!("typed data has more than {MAX_JSON_VALUES} JSON values")));
    }
    Ok(())
}

/// Check JSON text's nesting before it is parsed at all.
pub fn check_json_depth(text: &str, what: &str) -> Result<(), Denial> {
    let d = json_depth(text);
    if d > MAX_JSON_DEPTH {
        return Err(too(format!("{what} nests {d} levels deep; at most {MAX_JSON_DEPTH}")));
    }
    Ok(())
}

/// The first number in `v` that is not an integer of at most 64 bits (serde_json holds it
/// as a float, rounded: 1000000000000000000000001 reads as 1e24).
pub(crate) fn inexact_number(v: &Value) -> Option<&serde_json::Number> {
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            Value::Number(n) if n.is_f64() => return Some(n),
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => stack.extend(o.values()),
            _ => {}
        }
    }
    None
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

/// Count the objects of a parsed document (iteratively).
fn count_objects(v: &Value) -> usize {
    let mut n = 0;
    let mut stack = vec![v];
    while let Some(x) = stack.pop() {
        match x {
            Value::Array(a) => stack.extend(a.iter()),
            Value::Object(o) => {
                n += 1;
                stack.extend(o.values());
            }
            _ => {}
        }
    }
    n
}

/// Whether alloy resolves `base` as an elementary type (`uint` and `int` are 256 bits;
/// `uint7`, `bytes0` or `bytes33` are not elementary, and alloy would look them up as
/// structs): alloy's own rule, so the two cannot disagree.
fn alloy_elementary(base: &str) -> bool {
    alloy_dyn_abi::parser::RootType::parse(base).is_ok_and(|root| alloy_dyn_abi::Specifier::resolve(&root).is_ok())
}

/// Whether a field's base type is one of EIP-712's atomic or dynamic types: alloy takes it
/// as elementary, and it is spelled as EIP-712 spells it (`uint` and `function`, which
/// alloy also reads, are not EIP-712 types: refused, as the console refuses them).
fn elementary(base: &str) -> bool {
    let spelled = matches!(base, "address" | "bool" | "string" | "bytes")
        || ["uint", "int", "bytes"].iter().any(|p| {
            base.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|c| c.is_ascii_digit()))
        });
    spelled && alloy_elementary(base)
}

/// A name a struct type may have (in `types`, `primaryType` and a policy's
/// `primary_type`): an identifier of at most 256 bytes (`:` allowed, for namespaced names
/// like `ns:Root`, which alloy and wallets take as one name; no field type may name such a
/// struct, see [`split_type`]) that alloy does not take for an elementary type, nor looks
/// like one (`uint7`, `bytes33`: alloy would take them for structs, other EIP-712
/// implementations may not). A `$` is one (alloy takes it), though signing refuses a
/// struct whose name holds one ([`crate::typed::classify`]): parsing stays what it was for
/// the requests a snapshot holds.
pub fn is_struct_name(name: &str) -> bool {
    let sized = ["uint", "int", "bytes"]
        .iter()
        .any(|p| name.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())));
    !name.is_empty()
        && name.len() <= MAX_TYPE_NAME
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b':')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == ':')
        && !alloy_elementary(name)
        && !sized
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
    check_typed_text(text)?;
    let mut v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    // A JSON string holding the document (as some wallets send it).
    if let Value::String(inner) = &v {
        check_typed_text(inner)?;
        v = serde_json::from_str(inner).map_err(|e| bad(e.to_string()))?;
    }
    if count_values(&v) > MAX_JSON_VALUES {
        return Err(too(format!("typed data has more than {MAX_JSON_VALUES} JSON values")));
    }
    let types = v.get("types").and_then(Value::as_object).ok_or_else(|| bad("no `types` object"))?;
    if types.len() > MAX_STRUCTS {
        return Err(too(format!("{} struct types; at most {MAX_STRUCTS}", types.len())));
    }
    let mut refs: Vec<(&str, Vec<&str>, TypeCost)> = Vec::with_capacity(types.len());
    // The primary type is one of the structs bounded below: a tuple or an elementary type
    // there would be resolved (and expanded) by alloy with none of these bounds.
    let primary = v.get("primaryType").and_then(Value::as_str).ok_or_else(|| bad("no `primaryType` string"))?;
    if !types.contains_key(primary) || primary == "EIP712Domain" {
        return Err(bad(format!(
            "primaryType `{}` is not one of the struct types declared in `types`",
            crate::audit::truncate(primary, MAX_TYPE_NAME)
        )));
    }
    for (name, fields) in types {
        if !is_struct_name(name) {
            return Err(bad(format!(
                "`{}` cannot name a struct: 1 to {MAX_TYPE_NAME} bytes of letters, digits, `_`, `$` and `:`, not \
                 starting with a digit or `:`, and not an elementary type's name",
                crate::audit::truncate(name, MAX_TYPE_NAME)
            )));
        }
        let fields = fields.as_array().ok_or_else(|| bad(format!("type `{name}` is not a list of fields")))?;
        if fields.len() > MAX_FIELDS {
            return Err(too(format!("type `{name}` has {} fields; at most {MAX_FIELDS}", fields.len())));
        }
        let mut uses = Vec::new();
        // `Name(type name,…)`: the struct's own part of an `encodeType` string.
        let mut own =
            TypeCost { resolved: STRUCT_OVERHEAD + 2 * name.len(), per_value: 0, encode_type: name.len() + 2 };
        for f in fields {
            let fname =
                f.get("name").and_then(Value::as_str).ok_or_else(|| bad(format!("a field of `{name}` has no name")))?;
            let ftype =
                f.get("type").and_then(Value::as_str).ok_or_else(|| bad(format!("field `{fname}` has no type")))?;
            if fname.len() > MAX_TYPE_NAME {
                return Err(bad(format!("field name of {} bytes (at most {MAX_TYPE_NAME})", fname.len())));
            }
            let (base, dims) = split_type(ftype)?;
            own.resolved += FIELD_OVERHEAD + fname.len() + dims * STRUCT_OVERHEAD;
            own.encode_type += ftype.len() + fname.len() + 2;
            if !elementary(base) {
                if !types.contains_key(base) {
                    return Err(bad(format!("type `{base}` (field `{fname}` of `{name}`) is not declared")));
                }
                uses.push(base);
            }
        }
        own.per_value = own.resolved;
        refs.push((name.as_str(), uses, own));
    }
    // Struct nesting depth, iteratively, with cycle detection: Kahn-style layering from
    // structs that use no struct. Each struct's resolved size adds its fields' (once per
    // use: alloy copies them), its `encodeType` the structs it depends on (once each, as
    // a set: at most 64 types, so a `u64` of them).
    let index = |n: &str| refs.iter().position(|(k, _, _)| *k == n);
    let mut depth = vec![0usize; refs.len()];
    let mut done = vec![false; refs.len()];
    let mut cost = vec![TypeCost::default(); refs.len()];
    let mut deps = vec![0u64; refs.len()];
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
                let own = refs[i].2;
                let resolved = children.iter().fold(own.resolved, |total, &c| total.saturating_add(cost[c].resolved));
                if resolved > MAX_RESOLVED_TYPE {
                    return Err(too(format!(
                        "struct `{}` resolves to more than {MAX_RESOLVED_TYPE} bytes (every struct it uses, \
                         repeated each time it is used)",
                        refs[i].0
                    )));
                }
                deps[i] = children.iter().fold(1u64 << i, |set, &c| set | deps[c]);
                let encode_type =
                    (0..refs.len()).filter(|&j| deps[i] >> j & 1 == 1).map(|j| refs[j].2.encode_type).sum();
                cost[i] = TypeCost { resolved, per_value: own.per_value, encode_type };
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
    // Every object of the message may be a struct value of any type: each costs that
    // type's names and slots once coerced (counted twice: the estimate's margin) and its
    // `encodeType` string once hashed.
    let per_object =
        cost.iter().map(|c| c.per_value.saturating_mul(2).saturating_add(c.encode_type)).max().unwrap_or(0);
    let objects = v.get("message").map_or(0, count_objects);
    if objects > MAX_MESSAGE_OBJECTS {
        return Err(too(format!("typed data's message has {objects} objects; at most {MAX_MESSAGE_OBJECTS}")));
    }
    let work = objects.saturating_mul(per_object);
    if work > MAX_STRUCT_WORK {
        return Err(too(format!(
            "typed data's {objects} objects, each up to {per_object} bytes of struct work, exceed {MAX_STRUCT_WORK}"
        )));
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

    /// `depth` structs, each with `fields` fields of the next.
    fn fan_out(depth: usize, fields: usize) -> String {
        let mut types = String::from(r#""EIP712Domain":[]"#);
        for i in 0..depth {
            let fs: Vec<String> = (0..fields).map(|f| format!(r#"{{"name":"f{f}","type":"S{}"}}"#, i + 1)).collect();
            types.push_str(&format!(r#","S{i}":[{}]"#, fs.join(",")));
        }
        types.push_str(&format!(r#","S{depth}":[{{"name":"x","type":"uint8"}}]"#));
        format!(r#"{{"types":{{{types}}},"primaryType":"S0","domain":{{}},"message":{{}}}}"#)
    }

    #[test]
    fn a_type_that_expands_when_resolved_is_refused() {
        // Alloy copies a struct's fields' types into it each time it uses them: 5 levels of
        // 16 fields is 16^5 copies of the last (890 MB and 2.3 s before this bound).
        for (depth, fields) in [(5, 16), (8, 64), (2, 64), (3, 20)] {
            let e = typed_data(&fan_out(depth, fields)).unwrap_err();
            assert_eq!(e.code, ErrorCode::TooLarge, "{depth}×{fields}: {e}");
            assert!(e.reason.contains("resolves to more than"), "{e}");
        }
        // Small trees pass: 2 levels of 8, 3 of 4.
        typed_data(&fan_out(2, 8)).unwrap();
        typed_data(&fan_out(3, 4)).unwrap();
    }

    #[test]
    fn the_primary_type_is_a_declared_struct() {
        // Found by a review of the first bounds: a tuple of structs as `primaryType` was
        // resolved by alloy with none of the bounds (≈ 31 000 copies of a 175 KB struct in
        // 62 KB of text), and `"uint8[]…"` escaped the array-dimension bound.
        let with = |primary: &str| {
            format!(
                r#"{{"types":{{"EIP712Domain":[],"A":[{{"name":"a","type":"uint8"}}]}},"primaryType":"{primary}","domain":{{}},"message":{{}}}}"#
            )
        };
        typed_data(&with("A")).unwrap();
        let tuple = format!("({}A)", "A,".repeat(1_000));
        for primary in [tuple.as_str(), "B", "EIP712Domain", "bytes32", "uint8[][][][][][]", "A[]", "X.Y", ""] {
            let e = typed_data(&with(primary)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Malformed, "{primary}: {e}");
            assert!(e.reason.len() < 1024);
        }
        // A namespaced name is one struct's name.
        let ns = r#"{"types":{"ns:Root":[{"name":"v","type":"uint256"}]},"primaryType":"ns:Root","domain":{},"message":{"v":1}}"#;
        typed_data(ns).unwrap();
        let no_primary = r#"{"types":{"EIP712Domain":[]},"domain":{},"message":{}}"#;
        assert_eq!(typed_data(no_primary).unwrap_err().code, ErrorCode::Malformed);
    }

    #[test]
    fn a_struct_cannot_take_an_elementary_types_name() {
        // Found by the same review: bounds took `uint1`…`uint7`, `bytes0`, `bytes33` for
        // elementary types, alloy for structs (it resolves a name it cannot size as a
        // struct), so a fan-out of them passed every bound. What is elementary is now
        // alloy's own rule, and no struct may take such a name.
        for name in
            ["uint1", "uint7", "uint9", "uint264", "int3", "bytes0", "bytes33", "uint", "int", "function", "uint8"]
        {
            let text = format!(
                r#"{{"types":{{"EIP712Domain":[],"P":[{{"name":"a","type":"{name}"}}],"{name}":[{{"name":"x","type":"uint8"}}]}},"primaryType":"P","domain":{{}},"message":{{}}}}"#
            );
            let e = typed_data(&text).unwrap_err();
            assert!(e.reason.contains("cannot name a struct"), "{name}: {e}");
        }
        // alloy reads `uint`, `int` and `function` as field types; EIP-712 has none of them.
        for field in ["uint", "int", "function"] {
            let text = format!(
                r#"{{"types":{{"EIP712Domain":[],"P":[{{"name":"a","type":"{field}"}}]}},"primaryType":"P","domain":{{}},"message":{{}}}}"#
            );
            assert!(typed_data(&text).unwrap_err().reason.contains("is not declared"), "{field}");
        }
        for elementary in
            ["uint", "int", "function", "uint8", "int256", "bytes1", "bytes32", "bytes", "string", "bool", "address"]
        {
            assert!(elementary_is(elementary), "{elementary}");
        }
        for not in ["uint7", "bytes0", "bytes33", "uint264", "Uint8", "A"] {
            assert!(!elementary_is(not), "{not}");
        }
        // A fan-out through such names, 5 levels of 16 (the 890 MB case): refused.
        let mut types = String::from(r#""EIP712Domain":[],"P":["#);
        types.push_str(&(0..16).map(|f| format!(r#"{{"name":"f{f}","type":"uint1"}}"#)).collect::<Vec<_>>().join(","));
        types.push(']');
        for i in 1..5 {
            let fs: Vec<String> = (0..16).map(|f| format!(r#"{{"name":"f{f}","type":"uint{}"}}"#, i + 1)).collect();
            types.push_str(&format!(r#","uint{i}":[{}]"#, fs.join(",")));
        }
        types.push_str(r#","uint5":[{"name":"x","type":"uint8"}]"#);
        let text = format!(r#"{{"types":{{{types}}},"primaryType":"P","domain":{{}},"message":{{}}}}"#);
        assert_eq!(typed_data(&text).unwrap_err().code, ErrorCode::Malformed);
    }

    fn elementary_is(name: &str) -> bool {
        alloy_elementary(name)
    }

    #[test]
    fn values_are_counted_in_the_text_before_it_is_parsed() {
        // 64 KiB of `[{"":0},…]` is ≈ 9 300 maps, ≈ 6 MB as a JSON tree: counted first.
        let many = format!("[{}]", vec![r#"{"":0}"#; 9_300].join(","));
        let e = typed_data(&many).unwrap_err();
        assert!(e.reason.contains("more than 4096 JSON values"), "{e}");
        // Six values; the empty object is counted twice (its `{` and the `,` before it).
        assert_eq!(scan(r#"{"a":[1,2,{}],"b":"[,{"}"#), (3, 7));
        // A document sent as a JSON string is counted again inside.
        let e = typed_data(&serde_json::to_string(&many).unwrap()).unwrap_err();
        assert!(e.reason.contains("more than 4096 JSON values"), "{e}");
    }

    #[test]
    fn the_messages_objects_and_their_struct_work_are_bounded() {
        let doc = |n: usize, name_len: usize, fields: usize| {
            let fs: Vec<String> =
                (0..fields).map(|f| format!(r#"{{"name":"{f:0>name_len$}","type":"uint8"}}"#)).collect();
            format!(
                r#"{{"types":{{"EIP712Domain":[],"S":[{}],"M":[{{"name":"v","type":"S[]"}}]}},"primaryType":"M","domain":{{}},"message":{{"v":[{}]}}}}"#,
                fs.join(","),
                vec!["{}"; n].join(",")
            )
        };
        // Objects: 1 023 in the list and the message itself.
        typed_data(&doc(1_023, 1, 1)).unwrap();
        let e = typed_data(&doc(1_024, 1, 1)).unwrap_err();
        assert!(e.reason.contains("1025 objects; at most 1024"), "{e}");
        // Work: 64 field names of 250 bytes, repeated in every object.
        let e = typed_data(&doc(500, 250, 64)).unwrap_err();
        assert_eq!(e.code, ErrorCode::TooLarge);
        assert!(e.reason.contains("struct work"), "{e}");
        typed_data(&doc(50, 250, 64)).unwrap();
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
