//! A canonical-layout check of ABI-encoded data, before anything is decoded (review finding:
//! aliased offsets). A decoder follows offsets: many elements of a `bytes[]` may point at one
//! large blob, and decoding copies it once per element — a request of a few hundred KiB
//! decodes into gigabytes. The canonical layout (each dynamic value's tail exactly where the
//! previous one ended, nothing after the last) admits no aliasing, so once it holds, decoding
//! copies at most the input's bytes. It does not bound the decoder's nodes: alloy clones
//! the element type's template for each element, so a type with many parts per 32-byte
//! element builds many nodes per word ([`check_dyn_params`] counts them for the caller to
//! bound). The walk reads each word at most once and allocates nothing; recursion is
//! bounded by the shape's depth (static, or bounded by the policy compiler).

use alloy_dyn_abi::DynSolType;

/// The shape of an ABI type, as far as layout goes.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// A static 32-byte word (address, uint, bytes32, bool).
    Word,
    /// `bytes` or `string`.
    Bytes,
    /// `T[]`.
    Array(&'static Shape),
    /// A tuple (struct) with at least one dynamic member; each member has a 32-byte head.
    Tuple(&'static [Shape]),
}

/// Why the layout is not canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCanonical(pub &'static str);

fn word(data: &[u8], at: usize) -> Result<usize, NotCanonical> {
    let w =
        data.get(at..at.checked_add(32).ok_or(NotCanonical("offset overflow"))?).ok_or(NotCanonical("truncated"))?;
    if w[..24].iter().any(|&b| b != 0) {
        return Err(NotCanonical("an offset or length beyond the data"));
    }
    let v = u64::from_be_bytes(w[24..].try_into().unwrap_or_default());
    usize::try_from(v).map_err(|_| NotCanonical("an offset or length beyond the data"))
}

/// Check that `data` is exactly the canonical encoding of a value of `shape` encoded as a
/// tuple of parameters (a function's arguments after the selector, or `abi.encode(x)` of one
/// dynamic `x`, which is the tuple `(x)`).
pub fn check_params(shape: &'static [Shape], data: &[u8]) -> Result<(), NotCanonical> {
    let end = walk(&Shape::Tuple(shape), data, 0)?;
    if end != data.len() {
        return Err(NotCanonical("bytes after the encoding"));
    }
    Ok(())
}

/// Walk the value of `shape` whose encoding starts at `at` (a tuple: its heads; a dynamic
/// value: its tail); where it ends.
fn walk(shape: &Shape, data: &[u8], at: usize) -> Result<usize, NotCanonical> {
    let add = |a: usize, b: usize| a.checked_add(b).ok_or(NotCanonical("offset overflow"));
    match shape {
        Shape::Word => add(at, 32),
        Shape::Bytes => {
            let len = word(data, at)?;
            let end = add(add(at, 32)?, len.div_ceil(32).checked_mul(32).ok_or(NotCanonical("length overflow"))?)?;
            if end > data.len() {
                return Err(NotCanonical("bytes beyond the data"));
            }
            Ok(end)
        }
        Shape::Array(elem) => {
            let n = word(data, at)?;
            let body = add(at, 32)?;
            // Every element takes at least one word: more than the data holds is a lie.
            if n > (data.len().saturating_sub(body)) / 32 {
                return Err(NotCanonical("an array longer than the data"));
            }
            match elem {
                Shape::Word => add(body, n * 32),
                dynamic => {
                    let mut cursor = add(body, n * 32)?;
                    for i in 0..n {
                        let off = word(data, body + i * 32)?;
                        if add(body, off)? != cursor {
                            return Err(NotCanonical("an element not where the previous one ended"));
                        }
                        cursor = walk(dynamic, data, cursor)?;
                    }
                    Ok(cursor)
                }
            }
        }
        Shape::Tuple(members) => {
            let mut cursor = add(at, members.len() * 32)?;
            if cursor > data.len() {
                return Err(NotCanonical("truncated"));
            }
            for (j, m) in members.iter().enumerate() {
                if let Shape::Word = m {
                    continue;
                }
                let off = word(data, at + j * 32)?;
                if add(at, off)? != cursor {
                    return Err(NotCanonical("a member not where the previous one ended"));
                }
                cursor = walk(m, data, cursor)?;
            }
            Ok(cursor)
        }
    }
}

/// [`check_params`] for a type known only at run time (a policy's argument rules): the
/// same canonical layout, walked over alloy's `DynSolType`. Static members (words, static
/// tuples and fixed arrays) sit in their heads; dynamic ones must start where the previous
/// one ended. The recursion follows the type, whose depth the policy compiler bounds.
///
/// Returns how many nodes alloy's decoder builds for it (every element counts its type's
/// nodes: the decoder clones a template of the element type for each element, so a
/// `bool[1][1]…[]` of 32-byte elements builds one node per dimension per element), which
/// the caller bounds before decoding: the canonical layout bounds the bytes copied, not
/// the nodes.
pub fn check_dyn_params(ty: &DynSolType, data: &[u8]) -> Result<usize, NotCanonical> {
    let members: &[DynSolType] = match ty {
        DynSolType::Tuple(ts) => ts,
        one => std::slice::from_ref(one),
    };
    let mut nodes = 1;
    let end = dyn_members(members.iter(), members.len(), data, 0, &mut nodes)?;
    if end != data.len() {
        return Err(NotCanonical("bytes after the encoding"));
    }
    Ok(nodes)
}

/// The encoded size of a static type; `None` for a dynamic one.
fn static_size(ty: &DynSolType) -> Option<usize> {
    match ty {
        DynSolType::Bytes | DynSolType::String | DynSolType::Array(_) => None,
        DynSolType::FixedArray(t, n) => static_size(t)?.checked_mul(*n),
        DynSolType::Tuple(ts) | DynSolType::CustomStruct { tuple: ts, .. } => {
            ts.iter().try_fold(0usize, |sum, t| sum.checked_add(static_size(t)?))
        }
        _ => Some(32),
    }
}

/// The nodes of a type's tree, fixed arrays counted element by element (saturating).
pub fn type_nodes(ty: &DynSolType) -> usize {
    match ty {
        DynSolType::Array(t) => type_nodes(t).saturating_add(1),
        DynSolType::FixedArray(t, n) => type_nodes(t).saturating_mul(*n).saturating_add(1),
        DynSolType::Tuple(ts) | DynSolType::CustomStruct { tuple: ts, .. } => {
            ts.iter().fold(1usize, |sum, t| sum.saturating_add(type_nodes(t)))
        }
        _ => 1,
    }
}

/// The heads of `n` members starting at `at`, then each dynamic member's tail in order;
/// where the last one ends. Adds each member's nodes to `nodes`.
fn dyn_members<'a>(
    members: impl Iterator<Item = &'a DynSolType> + Clone,
    n: usize,
    data: &[u8],
    at: usize,
    nodes: &mut usize,
) -> Result<usize, NotCanonical> {
    let add = |a: usize, b: usize| a.checked_add(b).ok_or(NotCanonical("offset overflow"));
    // Every member's head takes at least a word: more than the data holds is a lie.
    if n > data.len().saturating_sub(at) / 32 {
        return Err(NotCanonical("more members than the data holds"));
    }
    let heads = members.clone().try_fold(0usize, |sum, m| add(sum, static_size(m).unwrap_or(32)))?;
    let mut cursor = add(at, heads)?;
    if cursor > data.len() {
        return Err(NotCanonical("truncated"));
    }
    let mut head = at;
    for m in members {
        // A static member is its type's nodes; an array, its template (the element type,
        // cloned for each element, counted below); anything else dynamic, one node and its
        // members, counted as the walk reaches them.
        let own = match m {
            _ if static_size(m).is_some() => type_nodes(m),
            DynSolType::Array(_) => type_nodes(m),
            _ => 1,
        };
        *nodes = nodes.saturating_add(own);
        match static_size(m) {
            Some(size) => head = add(head, size)?,
            None => {
                let off = word(data, head)?;
                if add(at, off)? != cursor {
                    return Err(NotCanonical("a member not where the previous one ended"));
                }
                cursor = dyn_tail(m, data, cursor, nodes)?;
                head = add(head, 32)?;
            }
        }
    }
    Ok(cursor)
}

/// Walk the tail of the dynamic value of `ty` at `at`; where it ends.
fn dyn_tail(ty: &DynSolType, data: &[u8], at: usize, nodes: &mut usize) -> Result<usize, NotCanonical> {
    match ty {
        DynSolType::Bytes => walk(&Shape::Bytes, data, at),
        // A string that is not UTF-8 decodes lossily into up to three times its bytes
        // (and re-encodes to other bytes, so it would be refused after): refused here.
        DynSolType::String => {
            let end = walk(&Shape::Bytes, data, at)?;
            let len = word(data, at)?;
            let text = data.get(at + 32..at + 32 + len).ok_or(NotCanonical("truncated"))?;
            std::str::from_utf8(text).map_err(|_| NotCanonical("a string that is not UTF-8"))?;
            Ok(end)
        }
        DynSolType::Array(t) => {
            let n = word(data, at)?;
            let body = at.checked_add(32).ok_or(NotCanonical("offset overflow"))?;
            dyn_members(std::iter::repeat_n(&**t, n), n, data, body, nodes)
        }
        DynSolType::FixedArray(t, n) => dyn_members(std::iter::repeat_n(&**t, *n), *n, data, at, nodes),
        DynSolType::Tuple(ts) | DynSolType::CustomStruct { tuple: ts, .. } => {
            dyn_members(ts.iter(), ts.len(), data, at, nodes)
        }
        // Static types have no tail.
        _ => Err(NotCanonical("a static type walked as dynamic")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Bytes;
    use alloy_sol_types::SolValue;

    const BYTES_ARRAY: &[Shape] = &[Shape::Array(&Shape::Bytes)];

    #[test]
    fn canonical_encodings_pass_and_aliases_fail() {
        let v: Vec<Bytes> = vec![vec![1u8; 40].into(), Bytes::new(), vec![2u8; 3].into()];
        let enc = (v.clone(),).abi_encode_params();
        check_params(BYTES_ARRAY, &enc).unwrap();
        // Point every element at the first one's tail: decodes, but aliases.
        let mut aliased = enc.clone();
        let first = aliased[64 + 31];
        for i in 1..3 {
            aliased[64 + i * 32 + 31] = first;
        }
        assert!(<Vec<Bytes>>::abi_decode_params(&aliased).is_ok(), "a decoder follows the aliases");
        assert!(check_params(BYTES_ARRAY, &aliased).is_err());
        // Trailing bytes, truncation, an absurd length.
        let mut long = enc.clone();
        long.push(0);
        assert!(check_params(BYTES_ARRAY, &long).is_err());
        assert!(check_params(BYTES_ARRAY, &enc[..enc.len() - 1]).is_err());
        let mut huge = enc.clone();
        huge[32..64].copy_from_slice(&[0xff; 32]);
        assert!(check_params(BYTES_ARRAY, &huge).is_err());
    }

    #[test]
    fn run_time_types_pass_their_canonical_encodings_and_refuse_aliases() {
        use alloy_dyn_abi::DynSolValue as V;
        use alloy_primitives::{Address, U256};
        let b = |n: usize, x: u8| V::Bytes(vec![x; n]);
        let cases: Vec<(&str, Vec<V>)> = vec![
            ("(uint256,bytes[])", vec![V::Uint(U256::from(7), 256), V::Array(vec![b(40, 1), b(0, 2), b(3, 3)])]),
            (
                "((address,string)[],uint8[3],string)",
                vec![
                    V::Array(vec![
                        V::Tuple(vec![V::Address(Address::ZERO), V::String("x".repeat(70))]),
                        V::Tuple(vec![V::Address(Address::ZERO), V::String(String::new())]),
                    ]),
                    V::FixedArray(vec![V::Uint(U256::from(1), 8); 3]),
                    V::String("tail".into()),
                ],
            ),
            (
                "((uint256,bytes)[2],(uint256,uint256),bytes[][])",
                vec![
                    V::FixedArray(vec![
                        V::Tuple(vec![V::Uint(U256::from(1), 256), b(33, 4)]),
                        V::Tuple(vec![V::Uint(U256::from(2), 256), b(1, 5)]),
                    ]),
                    V::Tuple(vec![V::Uint(U256::from(3), 256), V::Uint(U256::from(4), 256)]),
                    V::Array(vec![V::Array(vec![b(2, 6)]), V::Array(vec![])]),
                ],
            ),
            ("(uint256[],address)", vec![V::Array(vec![V::Uint(U256::from(9), 256); 5]), V::Address(Address::ZERO)]),
        ];
        fn count(v: &V) -> usize {
            match v {
                V::Array(vs) | V::FixedArray(vs) | V::Tuple(vs) => 1 + vs.iter().map(count).sum::<usize>(),
                _ => 1,
            }
        }
        for (sig, values) in cases {
            let ty: DynSolType = sig.parse().unwrap();
            let v = V::Tuple(values);
            let enc = v.abi_encode_params();
            let nodes = check_dyn_params(&ty, &enc).unwrap_or_else(|e| panic!("{sig}: {e:?}"));
            // At least the values' nodes: an empty dynamic array still clones its template.
            assert!(nodes >= count(&v), "{sig}: {nodes} nodes < {}", count(&v));
            let mut long = enc.clone();
            long.extend_from_slice(&[0; 32]);
            assert!(check_dyn_params(&ty, &long).is_err(), "{sig}: trailing bytes");
            assert!(check_dyn_params(&ty, &enc[..enc.len() - 32]).is_err(), "{sig}: truncated");
        }
        // Exact for a dynamic tuple's elements: the array, its template (3), and 3 each.
        let ty: DynSolType = "((address,bytes)[])".parse().unwrap();
        let v = V::Tuple(vec![V::Array(vec![V::Tuple(vec![V::Address(Address::ZERO), b(5, 1)]); 10])]);
        assert_eq!(check_dyn_params(&ty, &v.abi_encode_params()).unwrap(), 1 + 4 + 30);
        // A string that is not UTF-8 (a decoder would widen each bad byte to three).
        let ty: DynSolType = "(string)".parse().unwrap();
        let mut enc = V::Tuple(vec![V::String("abcd".into())]).abi_encode_params();
        check_dyn_params(&ty, &enc).unwrap();
        enc[64] = 0xff;
        assert!(check_dyn_params(&ty, &enc).is_err());
        // A second review's amplification: elements of 32 bytes whose type has a node per
        // dimension. 1 000 of them count 8 000 nodes and more.
        let ty: DynSolType = "(bool[1][1][1][1][1][1][1][])".parse().unwrap();
        let deep =
            V::Tuple(vec![V::Array(vec![(0..7).fold(V::Bool(true), |inner, _| V::FixedArray(vec![inner])); 1_000])]);
        let nodes = check_dyn_params(&ty, &deep.abi_encode_params()).unwrap();
        assert!(nodes >= 8_000, "{nodes}");
        // The attack: 2 000 elements of a `bytes[]` all pointing at one 100 KB blob decode
        // into 200 MB; the layout check refuses them before the decoder runs.
        let ty: DynSolType = "(bytes[])".parse().unwrap();
        let n = 2_000usize;
        let mut data = vec![0u8; 32];
        data[31] = 32;
        let mut len = [0u8; 32];
        len[24..].copy_from_slice(&(n as u64).to_be_bytes());
        data.extend_from_slice(&len);
        for _ in 0..n {
            let mut off = [0u8; 32];
            off[24..].copy_from_slice(&((n * 32) as u64).to_be_bytes());
            data.extend_from_slice(&off);
        }
        let mut blob_len = [0u8; 32];
        blob_len[24..].copy_from_slice(&100_000u64.to_be_bytes());
        data.extend_from_slice(&blob_len);
        data.extend_from_slice(&vec![7u8; 100_000usize.div_ceil(32) * 32]);
        assert!(check_dyn_params(&ty, &data).is_err());
        // Random bytes never panic and never pass for a type with dynamic members unless
        // they decode.
        let mut seed = 11u64;
        for n in 0..3000usize {
            let bytes: Vec<u8> = (0..n % 400)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    if seed >> 62 == 0 {
                        (seed >> 33) as u8
                    } else {
                        0
                    }
                })
                .collect();
            if check_dyn_params(&ty, &bytes).is_ok() {
                assert!(ty.abi_decode_params(&bytes).is_ok());
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let shape: &[Shape] = &[Shape::Array(&Shape::Tuple(&[Shape::Word, Shape::Array(&Shape::Bytes), Shape::Bytes]))];
        let mut seed = 7u64;
        for n in 0..4000usize {
            let data: Vec<u8> = (0..n % 300)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if seed.is_multiple_of(3) {
                        (seed >> 8) as u8
                    } else {
                        0
                    }
                })
                .collect();
            let _ = check_params(shape, &data);
        }
    }
}
