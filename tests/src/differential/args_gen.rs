//! Argument rules (RULES §5 "Arguments", R-POL-6) in random policies, and calldata for
//! them: values drawn from the pools the rules compare with (so that rules hold or fail),
//! encoded canonically or not (dirty high bits, a bad boolean, offsets out of bounds or
//! aliased, dirty padding, bad UTF-8, truncated or trailing bytes, too many values).

use super::*;
use alloy_primitives::I256;
use bridle_model::args::{params, Ty};

/// The contract random argument rules are written for.
pub const ROUTER: Address = address!("000000000000000000000000000000000000c0de");

/// Its functions: static, narrow, dynamic, tuples and arrays (none is token-moving or
/// account-executing).
pub const ARG_FNS: &[&str] = &[
    "swapExact(address token, uint256 amount, bool exact)",
    "setNarrow(uint8 a, int16 b, bytes4 c, bytes32 d, int256 e, uint64 f)",
    "post(address to, bytes data, string memo, uint256[] ids)",
    "route((address,uint128)[] hops, uint32[2] fees, bool flag)",
    "nest((uint256,bytes)[] xs, string[] tags, address who)",
];

/// A value to encode, or to compare with.
#[derive(Debug, Clone)]
enum V {
    Addr(Address),
    Uint(U256),
    Int(I256),
    Bool(bool),
    Bytes(Vec<u8>),
    Str(String),
    List(Vec<V>),
}

const ADDRS: [Address; 6] = [OWNER, ACCOUNT, ALICE, OTHER, SCA, TOK1];
const STRS: [&str; 4] = ["", "hi", "h\u{e9}llo", "a string that is longer than one word!!"];

fn max_uint(bits: usize) -> U256 {
    if bits == 256 {
        U256::MAX
    } else {
        (U256::from(1u8) << bits) - U256::from(1u8)
    }
}

fn int_bounds(bits: usize) -> (I256, I256) {
    let max = I256::from_raw(max_uint(bits - 1));
    (-max - I256::ONE, max)
}

/// A leaf value of `t` from the pools.
fn leaf(r: &mut Rng, t: &Ty) -> V {
    match t {
        Ty::Address => V::Addr(*r.pick(&ADDRS)),
        Ty::Bool => V::Bool(r.chance(50)),
        Ty::Uint(bits) => V::Uint(match r.below(8) {
            0 => max_uint(*bits),
            1 => max_uint(*bits) >> 1,
            _ => U256::from(*r.pick(&[0u64, 1, 5, 100, 1000, 1001])),
        }),
        Ty::Int(bits) => {
            let (min, max) = int_bounds(*bits);
            V::Int(match r.below(8) {
                0 => min,
                1 => max,
                _ => I256::try_from(*r.pick(&[-100i64, -5, -1, 0, 1, 5, 100])).expect("small"),
            })
        }
        Ty::FixedBytes(n) => V::Bytes(vec![*r.pick(&[0u8, 0x11, 0xab]); *n]),
        Ty::Bytes => V::Bytes(r.pick(&[vec![], vec![1u8], vec![0x22; 33], vec![0xde, 0xad, 0xbe, 0xef]]).clone()),
        Ty::String => V::Str(r.pick(&STRS).to_string()),
        _ => unreachable!("not a leaf"),
    }
}

/// A value of `t`: dynamic arrays of 0–3 elements (`big`: sometimes thousands).
fn value(r: &mut Rng, t: &Ty, big: bool) -> V {
    match t {
        Ty::Tuple(ts) => V::List(ts.iter().map(|t| value(r, t, big)).collect()),
        Ty::Array(inner, Some(k)) => V::List((0..*k).map(|_| value(r, inner, big)).collect()),
        Ty::Array(inner, None) => {
            // Now and then about 8 192 values (AMBIGUITIES 26): `post` with `n` ids decodes
            // into n + 6, `route` with `n` hops into 3n + 9.
            let n = match &**inner {
                Ty::Uint(256) if big && r.chance(3) => *r.pick(&[8000u64, 8185, 8186, 8187, 8400]),
                Ty::Tuple(_) if big && r.chance(3) => *r.pick(&[2726u64, 2727, 2728]),
                _ => r.below(4),
            };
            V::List((0..n).map(|_| value(r, inner, false)).collect())
        }
        t => leaf(r, t),
    }
}

/// Where a canonical encoding could be made non-canonical.
#[derive(Debug, Clone, Copy)]
enum Spot {
    /// A word of a narrow (or signed) integer, a boolean, an address or fixed bytes.
    Narrow(usize, usize),
    Bool(usize),
    Addr(usize),
    FixedBytes(usize, usize),
    Offset(usize),
    Length(usize),
    /// The padding of `bytes`/`string` data: (start, end).
    Pad(usize, usize),
    /// The first byte of a non-empty string.
    Utf8(usize),
}

fn shift(spots: Vec<Spot>, by: usize) -> impl Iterator<Item = Spot> {
    spots.into_iter().map(move |s| match s {
        Spot::Narrow(p, b) => Spot::Narrow(p + by, b),
        Spot::Bool(p) => Spot::Bool(p + by),
        Spot::Addr(p) => Spot::Addr(p + by),
        Spot::FixedBytes(p, n) => Spot::FixedBytes(p + by, n),
        Spot::Offset(p) => Spot::Offset(p + by),
        Spot::Length(p) => Spot::Length(p + by),
        Spot::Pad(a, b) => Spot::Pad(a + by, b + by),
        Spot::Utf8(p) => Spot::Utf8(p + by),
    })
}

fn word(v: U256) -> [u8; 32] {
    v.to_be_bytes::<32>()
}

fn is_dynamic(t: &Ty) -> bool {
    match t {
        Ty::Bytes | Ty::String | Ty::Array(_, None) => true,
        Ty::Array(t, Some(_)) => is_dynamic(t),
        Ty::Tuple(ts) => ts.iter().any(is_dynamic),
        _ => false,
    }
}

fn head_len(t: &Ty) -> usize {
    match t {
        _ if is_dynamic(t) => 32,
        Ty::Array(t, Some(k)) => head_len(t) * k,
        Ty::Tuple(ts) => ts.iter().map(head_len).sum(),
        _ => 32,
    }
}

fn enc_seq(items: &[(&Ty, &V)]) -> (Vec<u8>, Vec<Spot>) {
    let head: usize = items.iter().map(|(t, _)| head_len(t)).sum();
    let (mut h, mut tail, mut spots) = (Vec::new(), Vec::new(), Vec::new());
    for (t, v) in items {
        let (b, s) = enc(t, v);
        if is_dynamic(t) {
            spots.push(Spot::Offset(h.len()));
            h.extend_from_slice(&word(U256::from(head + tail.len())));
            spots.extend(shift(s, head + tail.len()));
            tail.extend(b);
        } else {
            spots.extend(shift(s, h.len()));
            h.extend(b);
        }
    }
    h.extend(tail);
    (h, spots)
}

fn enc(t: &Ty, v: &V) -> (Vec<u8>, Vec<Spot>) {
    match (t, v) {
        (Ty::Tuple(ts), V::List(vs)) => enc_seq(&ts.iter().zip(vs).collect::<Vec<_>>()),
        (Ty::Array(inner, Some(_)), V::List(vs)) => enc_seq(&vs.iter().map(|v| (&**inner, v)).collect::<Vec<_>>()),
        (Ty::Array(inner, None), V::List(vs)) => {
            let (b, s) = enc_seq(&vs.iter().map(|v| (&**inner, v)).collect::<Vec<_>>());
            let mut out = word(U256::from(vs.len())).to_vec();
            out.extend(b);
            (out, std::iter::once(Spot::Length(0)).chain(shift(s, 32)).collect())
        }
        (Ty::Bytes | Ty::String, _) => {
            let data = match v {
                V::Str(s) => s.as_bytes().to_vec(),
                V::Bytes(b) => b.clone(),
                _ => unreachable!(),
            };
            let mut out = word(U256::from(data.len())).to_vec();
            out.extend(&data);
            let padded = data.len().div_ceil(32) * 32;
            out.resize(32 + padded, 0);
            let mut spots = vec![Spot::Length(0)];
            if padded > data.len() {
                spots.push(Spot::Pad(32 + data.len(), 32 + padded));
            }
            if matches!(t, Ty::String) && !data.is_empty() {
                spots.push(Spot::Utf8(32));
            }
            (out, spots)
        }
        (Ty::Address, V::Addr(a)) => (word(addr_word(*a)).to_vec(), vec![Spot::Addr(0)]),
        (Ty::Bool, V::Bool(b)) => (word(U256::from(*b as u8)).to_vec(), vec![Spot::Bool(0)]),
        (Ty::Uint(bits), V::Uint(x)) => {
            (word(*x).to_vec(), if *bits < 256 { vec![Spot::Narrow(0, *bits)] } else { vec![] })
        }
        (Ty::Int(bits), V::Int(x)) => {
            (word(x.into_raw()).to_vec(), if *bits < 256 { vec![Spot::Narrow(0, *bits)] } else { vec![] })
        }
        (Ty::FixedBytes(n), V::Bytes(b)) => {
            let mut w = [0u8; 32];
            w[..*n].copy_from_slice(b);
            (w.to_vec(), if *n < 32 { vec![Spot::FixedBytes(0, *n)] } else { vec![] })
        }
        _ => unreachable!("{t:?} {v:?}"),
    }
}

/// Make an encoding non-canonical at one of its spots, or cut or extend it.
fn corrupt(r: &mut Rng, data: &mut Vec<u8>, spots: &[Spot]) {
    if spots.is_empty() || r.chance(25) {
        match r.below(3) {
            0 => data.truncate(data.len().saturating_sub(1 + r.below(40) as usize)),
            1 => data.push(0),
            _ => data.extend_from_slice(&[0u8; 32]),
        }
        return;
    }
    let offsets: Vec<usize> =
        spots.iter().filter_map(|s| if let Spot::Offset(p) = s { Some(*p) } else { None }).collect();
    let set = |data: &mut Vec<u8>, p: usize, v: U256| data[p..p + 32].copy_from_slice(&word(v));
    let get = |data: &[u8], p: usize| U256::from_be_slice(&data[p..p + 32]);
    match *r.pick(spots) {
        // A bit just above the type's width (for a signed one, not sign-extended).
        Spot::Narrow(p, bits) => {
            let bit = 255 - bits;
            data[p + bit / 8] ^= 0x80 >> (bit % 8);
        }
        Spot::Bool(p) => set(data, p, U256::from(*r.pick(&[2u64, 256, 1 << 40]))),
        Spot::Addr(p) => data[p + r.below(12) as usize] = 1,
        Spot::FixedBytes(p, n) => data[p + 31 - r.below(32 - n as u64) as usize] = 7,
        Spot::Offset(p) => {
            let v = get(data, p);
            let new = match r.below(5) {
                0 => v + U256::from(32u8),
                1 => v.saturating_sub(U256::from(32u8)),
                2 => U256::from(data.len() as u64 + 32 * r.below(3)),
                3 => U256::MAX - U256::from(31u8),
                // Aliased: the same offset as another dynamic value.
                _ => get(data, *r.pick(&offsets)),
            };
            set(data, p, new);
        }
        Spot::Length(p) => {
            let v = get(data, p);
            let new = match r.below(3) {
                0 => v + U256::from(1u8),
                1 => v.saturating_sub(U256::from(1u8)),
                _ => U256::from(1u64 << 32),
            };
            set(data, p, new);
        }
        Spot::Pad(a, b) => data[a + r.below((b - a) as u64) as usize] = 0x5a,
        Spot::Utf8(p) => data[p] = 0xff,
    }
}

/// Calldata of one of [`ARG_FNS`]: canonical mostly, non-canonical now and then.
pub fn arg_call(r: &mut Rng, big: bool) -> Vec<u8> {
    let sig = *r.pick(ARG_FNS);
    let ps = params(sig).expect("parses");
    let v = value(r, &ps, big);
    let (mut data, spots) = enc(&ps, &v);
    if r.chance(25) {
        corrupt(r, &mut data, &spots);
    }
    let mut out = bridle_model::abi::selector(sig).expect("selector").to_vec();
    out.extend(data);
    out
}

/// A leaf path into `t` (array indexes 0–2: requests carry arrays of 0–3 elements).
fn leaf_path(r: &mut Rng, t: &Ty, path: &mut Vec<u32>) -> Ty {
    match t {
        Ty::Tuple(ts) => {
            let i = r.below(ts.len() as u64);
            path.push(i as u32);
            leaf_path(r, &ts[i as usize], path)
        }
        Ty::Array(inner, k) => {
            path.push(r.below(k.map_or(3, |k| k as u64)) as u32);
            leaf_path(r, inner, path)
        }
        t => t.clone(),
    }
}

/// A policy value of a leaf of `t`, as TOML (an amount now and then, in `unit`: a token's
/// rules must write amounts in that token).
fn toml_value(r: &mut Rng, t: &Ty, unit: &str) -> String {
    let quoted = |s: String| format!("\"{s}\"");
    match leaf(r, t) {
        V::Addr(a) if a == OWNER && r.chance(70) => quoted("$owner".into()),
        V::Addr(a) if a == ACCOUNT && r.chance(70) => quoted("$account".into()),
        V::Addr(a) if a == TOK1 && r.chance(50) => quoted("T1".into()),
        V::Addr(a) => quoted(format!("{a}")),
        V::Uint(u) if r.chance(15) => quoted(format!("{} {unit}", u.min(U256::from(1000u32)))),
        V::Uint(u) => quoted(u.to_string()),
        V::Int(i) => quoted(i.to_string()),
        V::Bool(b) => b.to_string(),
        V::Bytes(b) => quoted(format!("0x{}", hex::encode(b))),
        V::Str(s) => quoted(s),
        V::List(_) => unreachable!(),
    }
}

/// One random argument rule on `sig`, as TOML.
fn arg_rule(r: &mut Rng, sig: &str, unit: &str) -> String {
    let ps = params(sig).expect("parses");
    let mut path = Vec::new();
    let t = leaf_path(r, &ps, &mut path);
    let numeric = matches!(t, Ty::Uint(_) | Ty::Int(_));
    let ops: &[&str] =
        if numeric { &["eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in"] } else { &["eq", "ne", "in", "not_in"] };
    let op = *r.pick(ops);
    let arg = path.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(".");
    let values = if op.ends_with("in") {
        let vs: Vec<String> = (0..1 + r.below(3)).map(|_| toml_value(r, &t, unit)).collect();
        format!("values = [{}]", vs.join(", "))
    } else {
        format!("value = {}", toml_value(r, &t, unit))
    };
    format!("{{ arg = \"{arg}\", op = \"{op}\", {values} }}")
}

/// A function entry with argument rules on `sig` (0–3 of them).
fn arg_entry(r: &mut Rng, sig: &str, unit: &str) -> String {
    let rules: Vec<String> = (0..r.below(4)).map(|_| arg_rule(r, sig, unit)).collect();
    format!("{{ signature = \"{sig}\", args = [{}] }}", rules.join(", "))
}

/// The function entries of a rule for [`ROUTER`] (or a wildcard): 1–4 of [`ARG_FNS`], a
/// function now and then twice (either entry may admit a call).
pub fn arg_entries(r: &mut Rng) -> String {
    let entries: Vec<String> = (0..1 + r.below(4))
        .map(|_| {
            let sig = *r.pick(ARG_FNS);
            arg_entry(r, sig, "T1")
        })
        .collect();
    format!("[{}]", entries.join(", "))
}

/// A `transfer` entry with argument rules on the listed token `symbol`.
pub fn transfer_entry(r: &mut Rng, symbol: &str) -> String {
    arg_entry(r, "transfer(address to, uint256 amount)", symbol)
}

/// Whether a policy has argument rules.
pub fn has_arg_rules(p: &Policy) -> bool {
    p.calls.iter().flat_map(|c| &c.functions).any(|f| !f.args.is_empty())
}

/// Whether `req` calls [`ROUTER`].
pub fn calls_router(req: &Req) -> bool {
    match req {
        Req::Tx { to, .. } => *to == Some(ROUTER),
        Req::UserOp { calls, .. } => calls.iter().any(|c| c.0 == ROUTER),
        Req::Redeem { entries, .. } => entries.iter().flat_map(|e| &e.1).any(|c| c.0 == ROUTER),
        _ => false,
    }
}
