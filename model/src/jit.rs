//! Just-in-time approvals (RULES §5 "Just-in-time approvals", R-APP-2): an approval directly
//! followed, in the same batch and as the same account, by a call to its spender that an
//! `approvals.jit` rule names may grant at most what that call consumes plus the tolerance.
//!
//! The model decodes only functions whose parameters are all static (addresses, booleans,
//! integers, fixed bytes, tuples and fixed arrays of those): a policy naming another is out
//! of its scope.

use crate::abi::{self, Erc20};
use crate::Model;
use alloy_primitives::{Address, U256};
use bridle_common::policy::doc::JitRule;

/// A static ABI type.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ty {
    Address,
    Bool,
    Uint(usize),
    Int(usize),
    FixedBytes(usize),
    /// A tuple, or a fixed array as that many elements.
    Tuple(Vec<Ty>),
}

impl Ty {
    fn words(&self) -> usize {
        match self {
            Ty::Tuple(ts) => ts.iter().map(Ty::words).sum(),
            _ => 1,
        }
    }

    /// RULES §5: a value narrower than 256 bits is canonical (high bits zero or
    /// sign-extended), a boolean 0 or 1, an address has 12 zero bytes.
    fn canonical(&self, w: &[u8]) -> bool {
        let v = U256::from_be_slice(w);
        match *self {
            Ty::Address => w[..12].iter().all(|&b| b == 0),
            Ty::Bool => v <= U256::from(1u8),
            Ty::Uint(bits) => v.bit_len() <= bits,
            // The top 256 - bits + 1 bits all equal (sign-extended).
            Ty::Int(bits) => {
                bits == 256 || {
                    let high = v >> (bits - 1);
                    high.is_zero() || high == (U256::MAX >> (bits - 1))
                }
            }
            Ty::FixedBytes(n) => w[n..].iter().all(|&b| b == 0),
            Ty::Tuple(_) => false,
        }
    }
}

fn parse_ty(s: &str) -> Option<Ty> {
    if let Some(open) = s.rfind('[').filter(|_| s.ends_with(']')) {
        let n: usize = s[open + 1..s.len() - 1].parse().ok()?;
        let inner = parse_ty(&s[..open])?;
        return (n > 0).then(|| Ty::Tuple(vec![inner; n]));
    }
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        if inner.is_empty() {
            return Some(Ty::Tuple(Vec::new()));
        }
        return Some(Ty::Tuple(abi::split_top(inner)?.iter().map(|p| parse_ty(p)).collect::<Option<Vec<_>>>()?));
    }
    let bits = |rest: &str, default: usize| -> Option<usize> {
        let b = if rest.is_empty() { default } else { rest.parse().ok()? };
        (b > 0 && b <= 256 && b % 8 == 0).then_some(b)
    };
    match s {
        "address" => Some(Ty::Address),
        "bool" => Some(Ty::Bool),
        _ => {
            if let Some(r) = s.strip_prefix("uint") {
                Some(Ty::Uint(bits(r, 256)?))
            } else if let Some(r) = s.strip_prefix("int") {
                Some(Ty::Int(bits(r, 256)?))
            } else if let Some(r) = s.strip_prefix("bytes").filter(|r| !r.is_empty()) {
                let n: usize = r.parse().ok()?;
                (1..=32).contains(&n).then_some(Ty::FixedBytes(n))
            } else {
                None // string, bytes, dynamic arrays: out of the model's scope
            }
        }
    }
}

/// A rule the model can decide: its selector, its parameters (all static) and paths.
#[derive(Debug, Clone)]
pub struct Jit {
    selector: [u8; 4],
    params: Ty,
    amount_path: Vec<u32>,
    token_path: Option<Vec<u32>>,
}

impl Jit {
    /// `None`: the rule names a function with a dynamic parameter (out of scope).
    pub fn new(r: &JitRule) -> Option<Jit> {
        let canonical = abi::canonical(&r.signature)?;
        let open = canonical.find('(')?;
        let params = parse_ty(&canonical[open..])?;
        Some(Jit {
            selector: abi::selector(&r.signature)?,
            params,
            amount_path: r.amount_path.clone(),
            token_path: r.token_path.clone(),
        })
    }

    /// The type and first word of the value at `path`.
    fn at(&self, path: &[u32]) -> Option<(&Ty, usize)> {
        let (mut t, mut word) = (&self.params, 0usize);
        for &i in path {
            let Ty::Tuple(ts) = t else { return None };
            let i = i as usize;
            word += ts.get(..i)?.iter().map(Ty::words).sum::<usize>();
            t = ts.get(i)?;
        }
        Some((t, word))
    }

    /// What a call with `data` consumes, when it is this rule's function, canonically
    /// encoded, naming `token` where the rule says the token is.
    pub fn consumed(&self, data: &[u8], token: Address) -> Option<U256> {
        if data.get(..4)? != self.selector || data.len() != 4 + 32 * self.params.words() {
            return None;
        }
        let word = |i: usize| &data[4 + 32 * i..4 + 32 * (i + 1)];
        // Every word canonical for its type.
        let mut leaves: Vec<&Ty> = Vec::new();
        flatten(&self.params, &mut leaves);
        if !leaves.iter().enumerate().all(|(i, t)| t.canonical(word(i))) {
            return None;
        }
        if let Some(tp) = &self.token_path {
            let (_, w) = self.at(tp)?;
            if Address::from_slice(&word(w)[12..]) != token {
                return None;
            }
        }
        let (_, w) = self.at(&self.amount_path)?;
        Some(U256::from_be_slice(word(w)))
    }
}

fn flatten<'a>(t: &'a Ty, out: &mut Vec<&'a Ty>) {
    match t {
        Ty::Tuple(ts) => ts.iter().for_each(|t| flatten(t, out)),
        t => out.push(t),
    }
}

/// `floor(consumed × (10 000 + bps) / 10 000)`, saturating.
pub fn bound(consumed: U256, bps: u32) -> U256 {
    consumed.saturating_mul(U256::from(10_000u32 + bps)) / U256::from(10_000u32)
}

impl Model {
    /// RULES §5 "Just-in-time approvals" over a request's calls `(holder, target, data)` in
    /// order; `starts[k]` is the index of call `k`'s first write. Returns, for each
    /// just-in-time `increaseAllowance`, its write's index and its bound: what may already
    /// be outstanding plus what it adds must stay within it (checked with the registry).
    pub(crate) fn check_jit(
        &self,
        batch: &[(Address, Address, &[u8])],
        starts: &[usize],
        codes: &mut Vec<&'static str>,
    ) -> Vec<(usize, U256)> {
        let a = &self.policy.approvals;
        let rules: Vec<Jit> = a.jit.iter().filter_map(Jit::new).collect();
        let mut adds = Vec::new();
        for (k, &(holder, to, data)) in batch.iter().enumerate() {
            // Permit2's `approve` is never just in time.
            if self.is_permit2(to) && abi::selector_of(data) == Some(abi::sel(abi::SIG_PERMIT2_APPROVE)) {
                if let Some(Ok(d)) = abi::decode_permit2_approve(data) {
                    if a.jit_only && !d.amount.is_zero() {
                        codes.push("unlimited_approval");
                    }
                }
                continue;
            }
            let (amount, spender, increase) = match abi::decode_erc20(data) {
                Some(Ok(Erc20::Approve { spender, amount })) => (amount, spender, false),
                Some(Ok(Erc20::Increase { spender, added })) => (added, spender, true),
                _ => continue,
            };
            if amount.is_zero() {
                continue;
            }
            // The next call, run as the same account, to the spender, naming the token.
            let consumed = batch
                .get(k + 1)
                .filter(|n| n.0 == holder && n.1 == spender)
                .and_then(|n| rules.iter().find_map(|j| j.consumed(n.2, to)));
            match consumed {
                Some(c) => {
                    let b = bound(c, a.jit_tolerance_bps);
                    if amount > b {
                        codes.push("unlimited_approval");
                    }
                    if increase {
                        if let Some(&w) = starts.get(k) {
                            adds.push((w, b));
                        }
                    }
                }
                None if a.jit_only => codes.push("unlimited_approval"),
                None => {}
            }
        }
        adds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_layouts_and_paths() {
        let r = JitRule {
            signature: "exactInputSingle((address,address,uint24,address,uint256,uint256,uint160) params)".into(),
            amount_path: vec![0, 4],
            token_path: Some(vec![0, 0]),
        };
        let j = Jit::new(&r).unwrap();
        let token = Address::repeat_byte(7);
        let words = [
            abi::addr_word(token),
            abi::addr_word(Address::repeat_byte(8)),
            U256::from(500u32),
            abi::addr_word(Address::repeat_byte(9)),
            U256::from(1234u32),
            U256::ZERO,
            U256::ZERO,
        ];
        let data = abi::encode_call(&r.signature, &words);
        assert_eq!(j.consumed(&data, token), Some(U256::from(1234u32)));
        assert_eq!(j.consumed(&data, Address::repeat_byte(8)), None);
        let mut bad = words;
        bad[2] = U256::from(1u32) << 24;
        assert_eq!(j.consumed(&abi::encode_call(&r.signature, &bad), token), None);
        assert_eq!(j.consumed(&data[..data.len() - 1], token), None);
        assert!(Jit::new(&JitRule { signature: "swap(bytes,uint256)".into(), amount_path: vec![1], token_path: None })
            .is_none());
        assert_eq!(bound(U256::from(1000u32), 50), U256::from(1005u32));
        assert_eq!(bound(U256::from(999u32), 50), U256::from(1003u32));
    }
}
