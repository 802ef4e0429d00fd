//! Argument rules (RULES §5 "Arguments", R-POL-6): the model's own strict ABI decoding of a
//! call's arguments and its reading of the predicates on them.
//!
//! Written from RULES.md and the README only. The decoder accepts exactly the canonical
//! encoding: narrow integers canonical (high bits zero or sign-extended), booleans 0 or 1,
//! addresses with 12 zero bytes, fixed bytes zero on the right, every offset pointing exactly
//! where the previous dynamic value ended (the first right after its head), lengths within
//! the calldata, the padding of `bytes`/`string` zero, strings UTF-8, nothing after the last
//! value, and at most [`MAX_VALUES`] values. Readings RULES.md leaves open are in
//! `model/AMBIGUITIES.md` ("Argument rules").

use crate::abi;
use alloy_primitives::{Address, I256, U256};
use bridle_common::policy::doc::{ArgRule, ArgValue, FunctionRule, Op};

/// Most values a call's arguments may decode into (RULES §5).
pub const MAX_VALUES: usize = 8192;

/// An ABI type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Address,
    Bool,
    Uint(usize),
    Int(usize),
    FixedBytes(usize),
    Bytes,
    String,
    /// `T[k]` (`Some(k)`) or `T[]`.
    Array(Box<Ty>, Option<usize>),
    Tuple(Vec<Ty>),
}

impl Ty {
    fn dynamic(&self) -> bool {
        match self {
            Ty::Bytes | Ty::String | Ty::Array(_, None) => true,
            Ty::Array(t, Some(_)) => t.dynamic(),
            Ty::Tuple(ts) => ts.iter().any(Ty::dynamic),
            _ => false,
        }
    }

    /// Bytes the type takes in its enclosing head.
    fn head(&self) -> usize {
        if self.dynamic() {
            return 32;
        }
        match self {
            Ty::Array(t, Some(k)) => t.head() * k,
            Ty::Tuple(ts) => ts.iter().map(Ty::head).sum(),
            _ => 32,
        }
    }

    fn leaf(&self) -> bool {
        !matches!(self, Ty::Array(..) | Ty::Tuple(_))
    }

    /// The values one value of this type counts for when its shape alone is known (an
    /// array's element type counted once more): itself, its fields, a fixed array's
    /// elements; a dynamic array's element type once.
    fn shape(&self) -> usize {
        match self {
            Ty::Tuple(ts) => 1 + ts.iter().map(Ty::shape).sum::<usize>(),
            Ty::Array(t, Some(k)) => 1 + k * t.shape(),
            Ty::Array(t, None) => 1 + t.shape(),
            _ => 1,
        }
    }
}

/// Parse one canonical type (`abi::canonical`'s output).
pub fn parse_ty(s: &str) -> Option<Ty> {
    if let Some(open) = s.rfind('[').filter(|_| s.ends_with(']')) {
        let inner = parse_ty(&s[..open])?;
        let dim = &s[open + 1..s.len() - 1];
        if dim.is_empty() {
            return Some(Ty::Array(Box::new(inner), None));
        }
        let k: usize = dim.parse().ok()?;
        return (k > 0).then(|| Ty::Array(Box::new(inner), Some(k)));
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        if inner.is_empty() {
            return Some(Ty::Tuple(Vec::new()));
        }
        return Some(Ty::Tuple(abi::split_top(inner)?.iter().map(|p| parse_ty(p)).collect::<Option<Vec<_>>>()?));
    }
    let bits = |rest: &str| -> Option<usize> {
        let b = if rest.is_empty() { 256 } else { rest.parse().ok()? };
        (b > 0 && b <= 256 && b % 8 == 0).then_some(b)
    };
    Some(match s {
        "address" => Ty::Address,
        "bool" => Ty::Bool,
        "bytes" => Ty::Bytes,
        "string" => Ty::String,
        _ => {
            if let Some(r) = s.strip_prefix("uint") {
                Ty::Uint(bits(r)?)
            } else if let Some(r) = s.strip_prefix("int") {
                Ty::Int(bits(r)?)
            } else if let Some(r) = s.strip_prefix("bytes") {
                let n: usize = r.parse().ok()?;
                if !(1..=32).contains(&n) {
                    return None;
                }
                Ty::FixedBytes(n)
            } else {
                return None;
            }
        }
    })
}

/// The parameters of a signature, as one tuple.
pub fn params(signature: &str) -> Option<Ty> {
    let c = abi::canonical(signature)?;
    parse_ty(&c[c.find('(')?..])
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Address(Address),
    Bool(bool),
    Uint(U256),
    Int(I256),
    Bytes(Vec<u8>),
    String(String),
    /// A tuple's fields or an array's elements.
    List(Vec<Value>),
}

struct Dec<'a> {
    data: &'a [u8],
    /// Values decoded so far (RULES §5: an array's element type counted once more; reading
    /// in AMBIGUITIES 26).
    count: usize,
}

impl Dec<'_> {
    fn word(&self, at: usize) -> Result<&[u8], ()> {
        self.data.get(at..at.checked_add(32).ok_or(())?).ok_or(())
    }

    /// A word read as a length or an offset: it must fit in the calldata.
    fn size(&self, at: usize) -> Result<usize, ()> {
        let v = U256::from_be_slice(self.word(at)?);
        let n = usize::try_from(v).map_err(|_| ())?;
        if n > self.data.len() {
            return Err(());
        }
        Ok(n)
    }

    fn tally(&mut self, n: usize) -> Result<(), ()> {
        self.count = self.count.saturating_add(n);
        if self.count > MAX_VALUES {
            return Err(());
        }
        Ok(())
    }

    /// A sequence of `types` whose head starts at `start`: returns the values and where the
    /// encoding ends (after its last dynamic value, or its head).
    fn seq(&mut self, types: &[&Ty], start: usize) -> Result<(Vec<Value>, usize), ()> {
        let head: usize = types.iter().map(|t| t.head()).sum();
        let mut cursor = start.checked_add(head).ok_or(())?;
        if cursor > self.data.len() {
            return Err(());
        }
        let mut at = start;
        let mut out = Vec::with_capacity(types.len());
        for t in types {
            if t.dynamic() {
                // The value starts exactly where the previous one ended.
                let off = self.size(at)?;
                if start.checked_add(off) != Some(cursor) {
                    return Err(());
                }
                let (v, end) = self.value(t, cursor)?;
                out.push(v);
                cursor = end;
            } else {
                let (v, _) = self.value(t, at)?;
                out.push(v);
            }
            at += t.head();
        }
        Ok((out, cursor))
    }

    /// The value of type `t` encoded at `at`, and where its encoding ends.
    fn value(&mut self, t: &Ty, at: usize) -> Result<(Value, usize), ()> {
        // Every value counts: a leaf, a tuple, an array (AMBIGUITIES 26).
        self.tally(1)?;
        match t {
            Ty::Bytes | Ty::String => {
                let len = self.size(at)?;
                let body = at + 32;
                let padded = len.div_ceil(32) * 32;
                let end = body.checked_add(padded).ok_or(())?;
                let raw = self.data.get(body..end).ok_or(())?;
                if raw[len..].iter().any(|&b| b != 0) {
                    return Err(());
                }
                let bytes = raw[..len].to_vec();
                let v = match t {
                    Ty::String => Value::String(String::from_utf8(bytes).map_err(|_| ())?),
                    _ => Value::Bytes(bytes),
                };
                Ok((v, end))
            }
            Ty::Array(inner, None) => {
                let n = self.size(at)?;
                // Every element takes at least one word: the length is bounded by the calldata.
                if n.checked_mul(inner.head()).is_none_or(|b| b > self.data.len()) {
                    return Err(());
                }
                self.tally(inner.shape())?; // the element type, once more
                let types = vec![&**inner; n];
                let (vs, end) = self.seq(&types, at + 32)?;
                Ok((Value::List(vs), end))
            }
            Ty::Array(inner, Some(k)) => {
                let types = vec![&**inner; *k];
                let (vs, end) = self.seq(&types, at)?;
                Ok((Value::List(vs), end))
            }
            Ty::Tuple(ts) => {
                let types: Vec<&Ty> = ts.iter().collect();
                let (vs, end) = self.seq(&types, at)?;
                Ok((Value::List(vs), end))
            }
            _ => {
                let w = self.word(at)?;
                let v = U256::from_be_slice(w);
                let value = match *t {
                    Ty::Address if w[..12].iter().all(|&b| b == 0) => Value::Address(Address::from_slice(&w[12..])),
                    Ty::Bool if v <= U256::from(1u8) => Value::Bool(v == U256::from(1u8)),
                    Ty::Uint(bits) if v.bit_len() <= bits => Value::Uint(v),
                    Ty::Int(bits) if sign_extended(v, bits) => Value::Int(I256::from_raw(v)),
                    // RULES §5: a `bytesN` word is zero past its `n` bytes (AMBIGUITIES 22).
                    Ty::FixedBytes(n) if w[n..].iter().all(|&b| b == 0) => Value::Bytes(w[..n].to_vec()),
                    _ => return Err(()),
                };
                Ok((value, at + 32))
            }
        }
    }
}

/// The top `256 − bits + 1` bits of `v` all equal.
fn sign_extended(v: U256, bits: usize) -> bool {
    if bits == 256 {
        return true;
    }
    let high = v >> (bits - 1);
    high.is_zero() || high == (U256::MAX >> (bits - 1))
}

/// Decode a call's arguments (the calldata after its selector) strictly as `params`.
/// `None`: not the canonical encoding (RULES §5: `argument_rejected`).
pub fn decode(params: &Ty, args: &[u8]) -> Option<Vec<Value>> {
    let Ty::Tuple(ts) = params else { return None };
    let types: Vec<&Ty> = ts.iter().collect();
    // The argument list counts as a tuple.
    let mut d = Dec { data: args, count: 1 };
    let (vs, end) = d.seq(&types, 0).ok()?;
    (end == args.len()).then_some(vs)
}

/// The type at `path` in `params` (`None`: the path names nothing).
pub fn type_at<'a>(params: &'a Ty, path: &[u32]) -> Option<&'a Ty> {
    let mut t = params;
    for &i in path {
        t = match t {
            Ty::Tuple(ts) => ts.get(i as usize)?,
            Ty::Array(inner, Some(k)) => ((i as usize) < *k).then_some(&**inner)?,
            Ty::Array(inner, None) => inner,
            _ => return None,
        };
    }
    Some(t)
}

fn value_at<'a>(vs: &'a [Value], path: &[u32]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut v = vs.get(*first as usize)?;
    for &i in rest {
        let Value::List(xs) = v else { return None };
        v = xs.get(i as usize)?;
    }
    Some(v)
}

/// A signed or unsigned integer as (negative, magnitude).
fn signed(v: &Value) -> Option<(bool, U256)> {
    match v {
        Value::Uint(u) => Some((false, *u)),
        Value::Int(i) => Some((i.is_negative(), i.unsigned_abs())),
        _ => None,
    }
}

fn numeric(a: &ArgValue) -> Option<(bool, U256)> {
    match a {
        ArgValue::Uint(u) => Some((false, *u)),
        ArgValue::Int(i) => Some((i.is_negative(), i.unsigned_abs())),
        _ => None,
    }
}

fn cmp_num(a: (bool, U256), b: (bool, U256)) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.0 && !a.1.is_zero(), b.0 && !b.1.is_zero()) {
        (false, false) => a.1.cmp(&b.1),
        (true, true) => b.1.cmp(&a.1),
        (true, false) => Less,
        (false, true) => Greater,
    }
}

/// Who `$owner` and `$account` are.
#[derive(Debug, Clone, Copy)]
pub struct Parties {
    pub owner: Address,
    pub account: Address,
}

/// Whether decoded value `v` equals policy value `a`.
fn equals(v: &Value, a: &ArgValue, who: Parties) -> bool {
    match (v, a) {
        (Value::Address(x), ArgValue::Address(y)) => x == y,
        (Value::Address(x), ArgValue::Owner) => *x == who.owner,
        (Value::Address(x), ArgValue::Account) => *x == who.account,
        (Value::Bool(x), ArgValue::Bool(y)) => x == y,
        (Value::Bytes(x), ArgValue::Bytes(y)) => x[..] == y[..],
        (Value::String(x), ArgValue::String(y)) => x == y,
        (Value::Uint(_) | Value::Int(_), _) => {
            numeric(a).is_some_and(|b| cmp_num(signed(v).expect("numeric"), b) == std::cmp::Ordering::Equal)
        }
        _ => false,
    }
}

/// Whether one rule holds of the decoded arguments. A path past the end of a dynamic array
/// names no value: the rule does not hold (AMBIGUITIES "Argument rules").
fn holds(r: &ArgRule, vs: &[Value], who: Parties) -> bool {
    let Some(v) = value_at(vs, &r.path) else { return false };
    let first = r.values.first();
    match r.op {
        Op::Eq => first.is_some_and(|a| equals(v, a, who)),
        Op::Ne => first.is_some_and(|a| !equals(v, a, who)),
        Op::In => r.values.iter().any(|a| equals(v, a, who)),
        Op::NotIn => !r.values.iter().any(|a| equals(v, a, who)),
        Op::Lt | Op::Lte | Op::Gt | Op::Gte => {
            let (Some(x), Some(y)) = (signed(v), first.and_then(numeric)) else { return false };
            let o = cmp_num(x, y);
            match r.op {
                Op::Lt => o.is_lt(),
                Op::Lte => o.is_le(),
                Op::Gt => o.is_gt(),
                _ => o.is_ge(),
            }
        }
    }
}

/// Whether the argument rules of function entry `f` (which matched the call by selector) all
/// hold of calldata `data`; an entry without rules decodes nothing and always holds.
pub fn entry_holds(f: &FunctionRule, data: &[u8], who: Parties) -> bool {
    if f.args.is_empty() {
        return true;
    }
    let Some(ps) = params(&f.signature) else { return false };
    let Some(vs) = data.get(4..).and_then(|a| decode(&ps, a)) else { return false };
    f.args.iter().all(|r| holds(r, &vs, who))
}

/// Why the model cannot decide an entry's argument rules (`Err`), or `Ok`: every rule's
/// path names a leaf (an integer, address, boolean, fixed bytes, `bytes` or `string`), an
/// ordering compares an integer with an integer, and `eq`/`ne` and the orderings have one
/// value whose kind fits the parameter.
pub fn supported(f: &FunctionRule) -> Result<(), String> {
    if f.args.is_empty() {
        return Ok(());
    }
    let sig = f.signature.trim();
    let ps = params(sig).ok_or_else(|| format!("argument rules on {sig}: a signature the model cannot parse"))?;
    for r in &f.args {
        let what = || format!("argument rule {:?} {} on {sig}", r.path, r.op.as_str());
        let t = type_at(&ps, &r.path).ok_or_else(|| format!("{}: the path names nothing", what()))?;
        if !t.leaf() {
            return Err(format!("{}: a path to a tuple or an array is out of the model's scope", what()));
        }
        let single = matches!(r.op, Op::Eq | Op::Ne | Op::Lt | Op::Lte | Op::Gt | Op::Gte);
        if single && r.values.len() != 1 {
            return Err(format!("{}: {} values", what(), r.values.len()));
        }
        let ordering = matches!(r.op, Op::Lt | Op::Lte | Op::Gt | Op::Gte);
        for a in &r.values {
            let fits = match (t, a) {
                (Ty::Uint(_) | Ty::Int(_), ArgValue::Uint(_) | ArgValue::Int(_)) => true,
                (_, _) if ordering => false,
                (Ty::Address, ArgValue::Address(_) | ArgValue::Owner | ArgValue::Account) => true,
                (Ty::Bool, ArgValue::Bool(_)) => true,
                (Ty::FixedBytes(n), ArgValue::Bytes(b)) => b.len() == *n,
                (Ty::Bytes, ArgValue::Bytes(_)) => true,
                (Ty::String, ArgValue::String(_)) => true,
                _ => false,
            };
            if !fits {
                return Err(format!("{}: value {a:?} does not fit {t:?}", what()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
