//! A canonical-layout check of ABI-encoded data, before anything is decoded (review finding:
//! aliased offsets). A decoder follows offsets: many elements of a `bytes[]` may point at one
//! large blob, and decoding copies it once per element — a request of a few hundred KiB
//! decodes into gigabytes. The canonical layout (each dynamic value's tail exactly where the
//! previous one ended, nothing after the last) admits no aliasing, so once it holds, decoding
//! copies at most the input's size. The walk reads each word at most once and allocates
//! nothing; recursion is bounded by the (static) shape's depth.

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
