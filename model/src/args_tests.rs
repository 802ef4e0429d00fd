use super::*;

fn w(v: u64) -> [u8; 32] {
    U256::from(v).to_be_bytes::<32>()
}

fn cat(words: &[[u8; 32]]) -> Vec<u8> {
    words.concat()
}

fn bytes_word(b: &[u8]) -> [u8; 32] {
    let mut x = [0u8; 32];
    x[..b.len()].copy_from_slice(b);
    x
}

fn rule(path: &[u32], op: Op, values: Vec<ArgValue>) -> ArgRule {
    ArgRule { path: path.to_vec(), op, values }
}

const WHO: Parties = Parties { owner: Address::repeat_byte(0xaa), account: Address::repeat_byte(0xcc) };

#[test]
fn types_parse() {
    let p = params("f((address a, uint128)[] hops, uint32[2] fees, string s, int8 x)").unwrap();
    let Ty::Tuple(ts) = &p else { panic!() };
    assert_eq!(ts[0], Ty::Array(Box::new(Ty::Tuple(vec![Ty::Address, Ty::Uint(128)])), None));
    assert_eq!(ts[1], Ty::Array(Box::new(Ty::Uint(32)), Some(2)));
    assert!(ts[0].dynamic() && !ts[1].dynamic() && ts[2].dynamic());
    assert_eq!(ts[1].head(), 64);
    assert_eq!(type_at(&p, &[0, 5, 1]), Some(&Ty::Uint(128)));
    assert_eq!(type_at(&p, &[1, 2]), None);
    assert_eq!(type_at(&p, &[3]), Some(&Ty::Int(8)));
    assert_eq!(parse_ty("uint7"), None);
    assert_eq!(parse_ty("bytes33"), None);
}

#[test]
fn static_words_are_canonical() {
    let p = params("f(uint8,int16,bool,address,bytes4)").unwrap();
    let mut b4 = [0u8; 32];
    b4[..4].copy_from_slice(&[1, 2, 3, 4]);
    let minus2 = (U256::MAX - U256::from(1u8)).to_be_bytes::<32>();
    let good = cat(&[w(255), minus2, w(1), w(0xabc), b4]);
    let vs = decode(&p, &good).unwrap();
    assert_eq!(vs[0], Value::Uint(U256::from(255u32)));
    assert_eq!(vs[1], Value::Int(I256::try_from(-2i64).unwrap()));
    assert_eq!(vs[2], Value::Bool(true));
    assert_eq!(vs[4], Value::Bytes(vec![1, 2, 3, 4]));
    // Each word made non-canonical in turn.
    let bad = [
        cat(&[w(256), minus2, w(1), w(0xabc), b4]),
        cat(&[w(255), w(0x8000), w(1), w(0xabc), b4]),
        cat(&[w(255), minus2, w(2), w(0xabc), b4]),
        cat(&[w(255), minus2, w(1), (U256::from(1u8) << 160usize).to_be_bytes::<32>(), b4]),
    ];
    for b in &bad {
        assert_eq!(decode(&p, b), None);
    }
    // A `bytesN` word is zero past its N bytes (RULES §5).
    let dirty = cat(&[w(255), minus2, w(1), w(0xabc), bytes_word(&[1, 2, 3, 4, 5])]);
    assert_eq!(decode(&p, &dirty), None);
    // Truncated or trailing bytes.
    assert_eq!(decode(&p, &good[..good.len() - 1]), None);
    let mut long = good.clone();
    long.push(0);
    assert_eq!(decode(&p, &long), None);
}

#[test]
fn dynamic_values_are_contiguous() {
    let p = params("f(bytes,string,uint256[])").unwrap();
    // Heads: 3 offsets (96 bytes); then bytes (len 2), string (len 3), array (2 elements).
    let good = cat(&[w(96), w(160), w(224), w(2), bytes_word(&[9, 9]), w(3), bytes_word(b"abc"), w(2), w(7), w(8)]);
    let vs = decode(&p, &good).unwrap();
    assert_eq!(vs[0], Value::Bytes(vec![9, 9]));
    assert_eq!(vs[1], Value::String("abc".into()));
    assert_eq!(vs[2], Value::List(vec![Value::Uint(U256::from(7u8)), Value::Uint(U256::from(8u8))]));
    let mut aliased = good.clone();
    aliased[32..64].copy_from_slice(&w(96)); // the string's offset points at the bytes
    assert_eq!(decode(&p, &aliased), None);
    let mut oob = good.clone();
    oob[64..96].copy_from_slice(&w(1 << 40));
    assert_eq!(decode(&p, &oob), None);
    let mut long_len = good.clone();
    long_len[96..128].copy_from_slice(&w(33)); // bytes longer than its word
    assert_eq!(decode(&p, &long_len), None);
    let mut pad = good.clone();
    pad[96 + 32 + 5] = 1; // dirty padding
    assert_eq!(decode(&p, &pad), None);
    let mut utf8 = good.clone();
    utf8[160 + 32] = 0xff;
    assert_eq!(decode(&p, &utf8), None);
    let mut gap = good.clone();
    gap[..32].copy_from_slice(&w(128));
    assert_eq!(decode(&p, &gap), None);
}

#[test]
fn the_value_count() {
    let p = params("f(uint8[])").unwrap();
    let enc = |n: u64| {
        let mut v = cat(&[w(32), w(n)]);
        for _ in 0..n {
            v.extend_from_slice(&w(1));
        }
        v
    };
    // The argument list, the array, its element type once more and each element.
    assert!(decode(&p, &enc(8000)).is_some());
    assert!(decode(&p, &enc(8189)).is_some());
    assert_eq!(decode(&p, &enc(8190)), None);
    // A tuple counts with its fields, a fixed array with its elements: 5 per element here,
    // the list, the array and the element type once more (5).
    let q = params("k((uint8,uint8[2])[])").unwrap();
    let enc_k = |n: u64| {
        let mut v = cat(&[w(32), w(n)]);
        for _ in 0..3 * n {
            v.extend_from_slice(&w(1));
        }
        v
    };
    assert!(decode(&q, &enc_k(1637)).is_some());
    assert_eq!(decode(&q, &enc_k(1638)), None);
    // A length beyond the calldata is refused before anything is allocated.
    assert_eq!(decode(&p, &cat(&[w(32), w(u64::MAX)])), None);
}

#[test]
fn predicates() {
    let f = FunctionRule {
        signature: "g(address to, int16 x, (uint256,bytes)[] xs, string s)".into(),
        args: vec![
            rule(&[0], Op::In, vec![ArgValue::Owner, ArgValue::Address(Address::repeat_byte(1))]),
            rule(&[1], Op::Gte, vec![ArgValue::Int(I256::try_from(-5i64).unwrap())]),
            rule(&[2, 1, 0], Op::Lt, vec![ArgValue::Uint(U256::from(10u8))]),
            rule(&[3], Op::Ne, vec![ArgValue::String("no".into())]),
        ],
    };
    supported(&f).unwrap();
    let sel = abi::selector(&f.signature).unwrap();
    let call = |to: Address, x: i64, second: u64, s: &[u8]| {
        let mut d = sel.to_vec();
        let xs = I256::try_from(x).unwrap().into_raw().to_be_bytes::<32>();
        // Head: to, x, offset xs (128), offset s.
        let xs_enc = cat(&[
            w(2),
            w(64),
            w(160),
            // element 0: (1, "") at 64 from the elements' start
            w(1),
            w(64),
            w(0),
            // element 1: (second, "")
            w(second),
            w(64),
            w(0),
        ]);
        let s_off = 128 + xs_enc.len() as u64;
        d.extend(cat(&[w(0), xs, w(128), w(s_off)]));
        d[4 + 12..4 + 32].copy_from_slice(to.as_slice());
        d.extend(xs_enc);
        d.extend(cat(&[w(s.len() as u64), bytes_word(s)]));
        d
    };
    assert!(entry_holds(&f, &call(WHO.owner, -5, 9, b"yes"), WHO));
    assert!(!entry_holds(&f, &call(WHO.account, -5, 9, b"yes"), WHO));
    assert!(!entry_holds(&f, &call(WHO.owner, -6, 9, b"yes"), WHO));
    assert!(!entry_holds(&f, &call(WHO.owner, 3, 10, b"yes"), WHO));
    assert!(!entry_holds(&f, &call(WHO.owner, 3, 1, b"no"), WHO));
    // A path past the end of the array names no value.
    let past = FunctionRule { args: vec![rule(&[2, 2, 0], Op::Ne, vec![ArgValue::Uint(U256::ZERO)])], ..f.clone() };
    assert!(!entry_holds(&past, &call(WHO.owner, 3, 1, b"yes"), WHO));
    // Out of scope: a path to an array, an ordering on an address.
    let arr = FunctionRule { args: vec![rule(&[2], Op::Eq, vec![ArgValue::Uint(U256::ZERO)])], ..f.clone() };
    assert!(supported(&arr).is_err());
    let ord = FunctionRule { args: vec![rule(&[0], Op::Lt, vec![ArgValue::Owner])], ..f };
    assert!(supported(&ord).is_err());
}
