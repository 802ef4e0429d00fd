//! A signing request, decoded for the owner to read before approving it: what it would do,
//! not a bare digest.

use crate::client::{hides_text, printable};
use alloy_dyn_abi::DynSolValue;
use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall};
use bridle_common::policy::Policy;
use bridle_common::protocol::SignPayload;
use bridle_common::tx::TxRequest;
use bridle_common::units::format_decimal;

sol! {
    function transfer(address to, uint256 amount) returns (bool);
    function approve(address spender, uint256 amount) returns (bool);
    function transferFrom(address from, address to, uint256 amount) returns (bool);
    function increaseAllowance(address spender, uint256 added) returns (bool);
}

mod permit2 {
    alloy_sol_types::sol! {
        function approve(address token, address spender, uint160 amount, uint48 expiration);
    }
}

/// Token names and decimals from the session's policy (when known), to print amounts.
#[derive(Default)]
pub struct Tokens(Vec<(Address, String, u8, Option<u64>)>);

impl Tokens {
    pub fn of(p: Option<&Policy>) -> Tokens {
        Tokens(
            p.map(|p| p.tokens.iter().map(|t| (t.address, t.symbol.clone(), t.decimals, t.chain_id)).collect())
                .unwrap_or_default(),
        )
    }

    fn amount(&self, chain: u64, token: Address, v: U256) -> String {
        if v == U256::MAX {
            return "unlimited (2^256 − 1)".to_string();
        }
        match self.0.iter().find(|(a, _, _, c)| *a == token && c.is_none_or(|c| c == chain)) {
            Some((_, sym, dec, _)) => format!("{} {sym}", format_decimal(v, *dec)),
            None => format!("{v} base units of token {token}"),
        }
    }

    fn name(&self, chain: u64, token: Address) -> String {
        match self.0.iter().find(|(a, _, _, c)| *a == token && c.is_none_or(|c| c == chain)) {
            Some((_, sym, _, _)) => format!("{sym} ({token})"),
            None => token.to_string(),
        }
    }
}

/// One call: `to`, value and decoded calldata.
pub fn call(chain: u64, to: Option<Address>, value: U256, data: &[u8], t: &Tokens) -> String {
    let Some(to) = to else {
        return format!(
            "contract creation with {} bytes of init code, value {} ETH",
            data.len(),
            format_decimal(value, 18)
        );
    };
    let value = if value.is_zero() { String::new() } else { format!(", sending {} ETH", format_decimal(value, 18)) };
    let what = if data.is_empty() {
        "a plain value transfer (no calldata)".to_string()
    } else if let Ok(c) = transferCall::abi_decode(data) {
        format!("ERC-20 transfer of {} to {}", t.amount(chain, to, c.amount), c.to)
    } else if let Ok(c) = approveCall::abi_decode(data) {
        format!("ERC-20 approve: {} may spend {}", c.spender, t.amount(chain, to, c.amount))
    } else if let Ok(c) = transferFromCall::abi_decode(data) {
        format!("ERC-20 transferFrom of {} from {} to {}", t.amount(chain, to, c.amount), c.from, c.to)
    } else if let Ok(c) = increaseAllowanceCall::abi_decode(data) {
        format!("ERC-20 increaseAllowance: {} may spend {} more", c.spender, t.amount(chain, to, c.added))
    } else if let Ok(c) = permit2::approveCall::abi_decode(data) {
        format!(
            "Permit2 approve: {} may spend {} until {}",
            c.spender,
            t.amount(chain, c.token, U256::from(c.amount)),
            c.expiration
        )
    } else {
        let sel = data.get(..4).map(hex::encode).unwrap_or_default();
        format!("a call of selector 0x{sel} with {} bytes of calldata (not decoded)", data.len())
    };
    format!("to {}: {what}{value}", t.name(chain, to))
}

/// The request, line by line.
pub fn describe(payload: &SignPayload, t: &Tokens) -> Vec<String> {
    let mut out = Vec::new();
    match payload {
        SignPayload::Transaction(tx) => {
            let (ty, fees) = match tx {
                TxRequest::Eip1559(r) => (
                    "EIP-1559",
                    format!(
                        "gas limit {}, max fee {} gwei, priority fee {} gwei",
                        r.gas_limit,
                        format_decimal(U256::from(r.max_fee_per_gas), 9),
                        format_decimal(U256::from(r.max_priority_fee_per_gas), 9)
                    ),
                ),
                TxRequest::Legacy(r) => (
                    "legacy",
                    format!("gas limit {}, gas price {} gwei", r.gas_limit, format_decimal(U256::from(r.gas_price), 9)),
                ),
                TxRequest::Eip7702 { .. } => ("EIP-7702", "never signed".to_string()),
            };
            out.push(format!("transaction ({ty}) on chain {}, nonce {}", tx.chain_id(), tx.nonce()));
            if let Some(c) = tx.call() {
                out.push(call(tx.chain_id(), c.to, c.value, &c.data, t));
            }
            out.push(fees);
        }
        SignPayload::TypedData(json) => match bridle_common::typed::parse(json) {
            Ok(p) => {
                let d = &p.data.domain;
                out.push(format!("EIP-712 typed data, primary type {}", p.data.primary_type));
                out.push(format!(
                    "domain: name {:?}, version {:?}, chain id {}, verifying contract {}",
                    d.name.as_deref().unwrap_or("-"),
                    d.version.as_deref().unwrap_or("-"),
                    d.chain_id.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
                    d.verifying_contract.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
                ));
                // What is hashed: the message as coerced to its declared types, every
                // declared field in type order and nothing else (keys the types do not
                // declare are not signed; shown from the JSON text, they could hide or fake
                // the fields that are: found 2026-12-04 by a review).
                out.push(format!("message ({}):", p.data.primary_type));
                if let DynSolValue::CustomStruct { prop_names, tuple, .. } = &p.message {
                    for (name, v) in prop_names.iter().zip(tuple) {
                        typed_lines(name, v, 1, &mut out);
                    }
                }
            }
            Err(d) => out.push(format!("typed data that does not decode: {d}")),
        },
        SignPayload::Message(m) => match std::str::from_utf8(m) {
            Ok(s) if !s.chars().any(|c| hides_text(c) && c != '\n' && c != '\t') => {
                out.push(format!("EIP-191 personal message, {} bytes:", m.len()));
                for l in s.lines() {
                    out.push(format!("  {l}"));
                }
            }
            _ => out.push(format!("EIP-191 personal message of {} bytes: 0x{}", m.len(), hex::encode(m))),
        },
        SignPayload::UserOperation(op) => {
            out.push(format!(
                "ERC-4337 user operation on chain {}, entry point {}, account {}, nonce {}",
                op.chain_id, op.entry_point, op.sender, op.nonce
            ));
            match op.calls() {
                Ok(calls) => {
                    for (i, c) in calls.iter().enumerate() {
                        out.push(format!("call {i}: {}", call(op.chain_id, c.to, c.value, &c.data, t)));
                    }
                }
                Err(d) => out.push(format!("callData that does not decode: {d}")),
            }
            if let Some(p) = op.paymaster {
                out.push(format!("paymaster {p}"));
            }
            if op.factory.is_some() || op.init_code.is_some() {
                out.push("deploys the account (factory / initCode)".to_string());
            }
        }
    }
    // Nothing from the request reaches the terminal as something it would obey.
    out.into_iter().map(|l| printable(&l).into_owned()).collect()
}

/// Longest `bytes` value shown whole; a longer one is shown up to it, saying so.
const MAX_BYTES_SHOWN: usize = 256;

/// One field of a typed-data message, `depth` levels in: its name and value as hashed; a
/// struct or an array as a heading and its members below it.
fn typed_lines(name: &str, v: &DynSolValue, depth: usize, out: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    let members: Option<(String, Vec<(String, &DynSolValue)>)> = match v {
        DynSolValue::CustomStruct { name: ty, prop_names, tuple } => {
            Some((ty.clone(), prop_names.iter().cloned().zip(tuple).collect()))
        }
        DynSolValue::Array(xs) | DynSolValue::FixedArray(xs) | DynSolValue::Tuple(xs) => {
            Some((format!("{} item(s)", xs.len()), xs.iter().enumerate().map(|(i, x)| (format!("[{i}]"), x)).collect()))
        }
        _ => None,
    };
    if let Some((heading, members)) = members {
        out.push(format!("{pad}{name}: {heading}"));
        for (n, x) in members {
            typed_lines(&n, x, depth + 1, out);
        }
        return;
    }
    let shown = match v {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, bits) => format!("{i} (int{bits})"),
        DynSolValue::Uint(u, bits) => format!("{u} (uint{bits})"),
        DynSolValue::FixedBytes(w, n) => format!("0x{}", hex::encode(&w[..(*n).min(32)])),
        DynSolValue::Address(a) => a.to_string(),
        DynSolValue::Function(f) => format!("0x{}", hex::encode(f)),
        DynSolValue::String(t) => format!("{t:?}"),
        DynSolValue::Bytes(b) if b.len() > MAX_BYTES_SHOWN => {
            format!("0x{}… ({} bytes; the first {MAX_BYTES_SHOWN} shown)", hex::encode(&b[..MAX_BYTES_SHOWN]), b.len())
        }
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        other => format!("{other:?}"),
    };
    out.push(format!("{pad}{name}: {shown}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use bridle_common::tx::Eip1559Request;

    #[test]
    fn an_erc20_transfer_is_named_with_its_token() {
        let usdc = Address::repeat_byte(0x55);
        let policy_json = serde_json::json!({"symbol": "USDC", "address": usdc, "decimals": 6});
        let tok: bridle_common::policy::doc::Token = serde_json::from_value(policy_json).unwrap();
        let t = Tokens(vec![(tok.address, tok.symbol, tok.decimals, None)]);
        let data = transferCall { to: Address::repeat_byte(0xde), amount: U256::from(1_500_000_000u64) }.abi_encode();
        let tx = TxRequest::Eip1559(Eip1559Request {
            chain_id: 8453,
            nonce: 3,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 60_000,
            to: Some(usdc),
            value: U256::ZERO,
            data: data.into(),
            access_list: vec![],
        });
        let lines = describe(&SignPayload::Transaction(tx), &t);
        assert_eq!(lines[0], "transaction (EIP-1559) on chain 8453, nonce 3");
        let want = format!("to USDC ({usdc}): ERC-20 transfer of 1500 USDC to {}", Address::repeat_byte(0xde));
        assert_eq!(lines[1], want);
        assert!(lines[2].contains("max fee 30 gwei"), "{}", lines[2]);
    }

    #[test]
    fn typed_data_shows_what_is_hashed_and_nothing_a_terminal_obeys() {
        // Undeclared keys sort before the declared ones and are not signed; a string field
        // carries an escape sequence and a right-to-left override.
        let mut message = serde_json::json!({
            "spender": "0x2222222222222222222222222222222222222222",
            "value": "1000000000",
            "memo": "\u{1b}[2K\rapproved\u{202e}cba",
            "nested": {"inner": true},
            "blob": format!("0x{}", "ab".repeat(300)),
        });
        for i in 0..39 {
            message[format!("a{i:02}")] = serde_json::json!("fake: 1 USDC");
        }
        let doc = serde_json::json!({
            "types": {
                "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}],
                "Grant": [
                    {"name": "spender", "type": "address"}, {"name": "value", "type": "uint256"},
                    {"name": "memo", "type": "string"}, {"name": "nested", "type": "Inner"},
                    {"name": "blob", "type": "bytes"}
                ],
                "Inner": [{"name": "inner", "type": "bool"}]
            },
            "primaryType": "Grant",
            "domain": {"name": "Example", "chainId": 1},
            "message": message,
        });
        let lines = describe(&SignPayload::TypedData(doc.to_string()), &Tokens::default());
        let all = lines.join("\n");
        assert!(!all.contains("a00") && !all.contains("fake"), "undeclared keys are not shown:\n{all}");
        let spender = Address::repeat_byte(0x22);
        for want in [
            "message (Grant):".to_string(),
            format!("  spender: {spender}"),
            "  value: 1000000000 (uint256)".to_string(),
            "  nested: Inner".to_string(),
            "    inner: true".to_string(),
        ] {
            assert!(lines.contains(&want), "{want:?} not in\n{all}");
        }
        assert!(all.contains("(300 bytes; the first 256 shown)"), "{all}");
        assert!(!all.chars().any(|c| c == '\u{1b}' || c == '\r' || c == '\u{202e}'), "{all:?}");
        assert!(all.contains("u{202e}"), "the override is shown escaped: {all}");
    }
}
