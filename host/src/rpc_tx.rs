//! Ethereum JSON transaction object → [`TxRequest`], and the signed transaction reply of
//! `eth_signTransaction`, both typed: the request is read from its bytes into [`EthTx`]
//! (see [`crate::rpc_json`]), the reply is a struct serialized with `alloy_serde::quantity`.

use crate::rpc::RpcError;
use crate::rpc_json::{
    array_within, bytes_field, first_char, json_object, object, opt_address, opt_u128, opt_u256, opt_u64,
    param_address, present, present_raw, required, Scalar,
};
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use bridle_common::protocol::Signed;
use bridle_common::tx::{AccessEntry, AuthorizationRequest, Eip1559Request, LegacyRequest, TxRequest};
use serde::Serialize;
use serde_json::value::RawValue;
use std::str::FromStr;

json_object! {
    /// An Ethereum JSON transaction object as `eth_signTransaction` takes it.
    pub struct EthTx<'a> {
        from: "from" => Scalar<'a>,
        to: "to" => Scalar<'a>,
        gas: "gas" => Scalar<'a>,
        gas_limit: "gasLimit" => Scalar<'a>,
        gas_price: "gasPrice" => Scalar<'a>,
        max_fee_per_gas: "maxFeePerGas" => Scalar<'a>,
        max_priority_fee_per_gas: "maxPriorityFeePerGas" => Scalar<'a>,
        value: "value" => Scalar<'a>,
        data: "data" => Scalar<'a>,
        input: "input" => Scalar<'a>,
        nonce: "nonce" => Scalar<'a>,
        chain_id: "chainId" => Scalar<'a>,
        typ: "type" => Scalar<'a>,
        access_list: "accessList" => &'a RawValue,
        authorization_list: "authorizationList" => &'a RawValue,
    }
}

json_object! {
    /// One `accessList` entry.
    pub struct AccessItem<'a> {
        address: "address" => Scalar<'a>,
        storage_keys: "storageKeys" => &'a RawValue,
    }
}

json_object! {
    /// One `authorizationList` entry (its signature fields are not read).
    pub struct AuthItem<'a> {
        chain_id: "chainId" => Scalar<'a>,
        address: "address" => Scalar<'a>,
        nonce: "nonce" => Scalar<'a>,
    }
}

/// The most items of an access list, an entry's storage keys or an authorization list read
/// (the enclave's frame bounds the whole; this bounds what is held while reading it).
const MAX_LIST_ITEMS: usize = 4096;

const BLOB_FIELDS: &[&str] = &["blobVersionedHashes", "maxFeePerBlobGas", "blobs", "sidecar"];

fn access_list(v: Option<&RawValue>) -> Result<Vec<AccessEntry>, RpcError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let arr = array_within(v.get().as_bytes(), MAX_LIST_ITEMS, "accessList").map_err(|e| e.invalid("accessList"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            // Not an object: it has no address.
            let item: AccessItem = if first_char(e.get()) == Some(b'{') {
                object(e, &format!("accessList[{i}]"))?
            } else {
                AccessItem::default()
            };
            let address = item
                .address
                .as_ref()
                .ok_or_else(|| RpcError::invalid(format!("accessList[{i}].address is missing")))
                .and_then(|a| param_address(a, &format!("accessList[{i}].address")))?;
            let keys = match present_raw(item.storage_keys) {
                None => Vec::new(),
                Some(raw) => {
                    let field = format!("accessList[{i}].storageKeys");
                    let keys =
                        array_within(raw.get().as_bytes(), MAX_LIST_ITEMS, &field).map_err(|e| e.invalid(&field))?;
                    keys.iter()
                        .map(|k| {
                            let k: Scalar = serde_json::from_str(k.get()).unwrap_or(Scalar::Other);
                            k.as_str().and_then(|s| B256::from_str(s.trim()).ok()).ok_or_else(|| {
                                RpcError::invalid(format!(
                                    "accessList[{i}].storageKeys has a key that is not 32 bytes of hex"
                                ))
                            })
                        })
                        .collect::<Result<_, _>>()?
                }
            };
            Ok(AccessEntry { address, storage_keys: keys })
        })
        .collect()
}

fn authorization_list(v: &RawValue) -> Result<Vec<AuthorizationRequest>, RpcError> {
    let arr = array_within(v.get().as_bytes(), MAX_LIST_ITEMS, "authorizationList")
        .map_err(|e| e.invalid("authorizationList"))?;
    arr.iter()
        .enumerate()
        .map(|(i, e)| {
            if first_char(e.get()) != Some(b'{') {
                return Err(RpcError::invalid(format!("authorizationList[{i}] must be an object")));
            }
            let o: AuthItem = object(e, &format!("authorizationList[{i}]"))?;
            let f = |name: &str| format!("authorizationList[{i}].{name}");
            Ok(AuthorizationRequest {
                chain_id: required(opt_u256(&o.chain_id, "chainId")?, &f("chainId"))?,
                address: param_address(present(&o.address).unwrap_or(&Scalar::Null), &f("address"))?,
                nonce: required(opt_u64(&o.nonce, "nonce")?, &f("nonce"))?,
            })
        })
        .collect()
}

/// Convert an Ethereum JSON transaction object. Returns `from` (if given) and the request.
pub fn parse_tx(raw: &RawValue) -> Result<(Option<Address>, TxRequest), RpcError> {
    let t: EthTx = object(raw, "the transaction")?;
    if let Some(k) = &t.unknown {
        if BLOB_FIELDS.contains(&k.as_str()) {
            return Err(RpcError::unsupported(format!("blob transactions (field {k}) are not supported")));
        }
        return Err(RpcError::invalid(format!("unknown transaction field {k}")));
    }
    let from = opt_address(&t.from, "from")?;
    let to = opt_address(&t.to, "to")?;
    let value = opt_u256(&t.value, "value")?.unwrap_or(U256::ZERO);
    let data = match (present(&t.data), present(&t.input)) {
        (Some(d), Some(i)) => {
            let (d, i) = (bytes_field(d, "data")?, bytes_field(i, "input")?);
            if d != i {
                return Err(RpcError::invalid("data and input are both set and differ"));
            }
            d
        }
        (Some(d), None) => bytes_field(d, "data")?,
        (None, Some(i)) => bytes_field(i, "input")?,
        (None, None) => Bytes::new(),
    };
    let gas = match (opt_u64(&t.gas, "gas")?, opt_u64(&t.gas_limit, "gasLimit")?) {
        (Some(a), Some(b)) if a != b => return Err(RpcError::invalid("gas and gasLimit are both set and differ")),
        (a, b) => a.or(b),
    };
    let gas_price = opt_u128(&t.gas_price, "gasPrice")?;
    let max_fee = opt_u128(&t.max_fee_per_gas, "maxFeePerGas")?;
    let max_priority = opt_u128(&t.max_priority_fee_per_gas, "maxPriorityFeePerGas")?;
    let auth_list = present_raw(t.authorization_list);
    let access = present_raw(t.access_list);
    let nonce = opt_u64(&t.nonce, "nonce")?;
    let chain_id = opt_u64(&t.chain_id, "chainId")?;

    let typ = match opt_u64(&t.typ, "type")? {
        Some(t) => t,
        None if auth_list.is_some() => 4,
        None if max_fee.is_some() || max_priority.is_some() => 2,
        None if gas_price.is_some() => {
            if access.is_some() {
                1
            } else {
                0
            }
        }
        None => {
            return Err(RpcError::invalid(
                "missing fee: set maxFeePerGas and maxPriorityFeePerGas (type 0x2) or gasPrice (type 0x0); Bridle fills nothing",
            ))
        }
    };

    // EIP-7702 (type 4, or any authorization list): relayed so that the enclave refuses it
    // with its own code (R-SIGN-1).
    if typ == 4 || auth_list.is_some() {
        let authorization_list = match auth_list {
            Some(l) => authorization_list(l)?,
            None => Vec::new(),
        };
        let chain_id = required(chain_id, "chainId")?;
        return Ok((from, TxRequest::Eip7702 { chain_id, authorization_list }));
    }

    let tx = match typ {
        2 => {
            if gas_price.is_some() {
                return Err(RpcError::invalid(
                    "gasPrice is set on a type 0x2 transaction; use maxFeePerGas and maxPriorityFeePerGas",
                ));
            }
            TxRequest::Eip1559(Eip1559Request {
                nonce: required(nonce, "nonce")?,
                chain_id: required(chain_id, "chainId")?,
                gas_limit: required(gas, "gas")?,
                max_fee_per_gas: required(max_fee, "maxFeePerGas")?,
                max_priority_fee_per_gas: required(max_priority, "maxPriorityFeePerGas")?,
                to,
                value,
                data,
                access_list: access_list(access)?,
            })
        }
        0 => {
            if max_fee.is_some() || max_priority.is_some() {
                return Err(RpcError::invalid(
                    "maxFeePerGas/maxPriorityFeePerGas are set on a type 0x0 transaction; use gasPrice",
                ));
            }
            if !access_list(access)?.is_empty() {
                return Err(RpcError::unsupported(
                    "an access list with gasPrice is an EIP-2930 (type 0x1) transaction, which is not supported; use type 0x2",
                ));
            }
            TxRequest::Legacy(LegacyRequest {
                nonce: required(nonce, "nonce")?,
                chain_id: required(chain_id, "chainId")?,
                gas_limit: required(gas, "gas")?,
                gas_price: required(gas_price, "gasPrice")?,
                to,
                value,
                data,
            })
        }
        1 => return Err(RpcError::unsupported("EIP-2930 (type 0x1) transactions are not supported; use type 0x2")),
        3 => return Err(RpcError::unsupported("blob (type 0x3) transactions are not supported")),
        t => return Err(RpcError::invalid(format!("unknown transaction type {t:#x}"))),
    };
    Ok((from, tx))
}

// ---------------------------------------------------------------------------------------
// The reply.

/// `{"raw": "0x…", "tx": {…}}` as geth/clef answer `eth_signTransaction`.
#[derive(Debug, Serialize)]
pub struct SignedTxResult {
    pub raw: Bytes,
    pub tx: SignedTxJson,
}

/// The signed transaction object. Its fields are declared in the order of their JSON names
/// (the order the earlier `Value` map wrote them in), so the reply's bytes are unchanged.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedTxJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    access_list: Option<Vec<AccessJson>>,
    #[serde(with = "alloy_serde::quantity")]
    chain_id: u64,
    #[serde(with = "alloy_serde::quantity")]
    gas: u64,
    #[serde(skip_serializing_if = "Option::is_none", with = "alloy_serde::quantity::opt")]
    gas_price: Option<u128>,
    hash: B256,
    input: Bytes,
    #[serde(skip_serializing_if = "Option::is_none", with = "alloy_serde::quantity::opt")]
    max_fee_per_gas: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none", with = "alloy_serde::quantity::opt")]
    max_priority_fee_per_gas: Option<u128>,
    #[serde(with = "alloy_serde::quantity")]
    nonce: u64,
    r: U256,
    s: U256,
    to: Option<Address>,
    #[serde(rename = "type")]
    typ: &'static str,
    v: U256,
    value: U256,
    #[serde(skip_serializing_if = "Option::is_none", with = "alloy_serde::quantity::opt")]
    y_parity: Option<u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessJson {
    address: Address,
    storage_keys: Vec<B256>,
}

/// The reply to `eth_signTransaction`: the request's fields plus the enclave's signature;
/// `hash` is keccak256 of `raw`.
pub fn signed_tx_result(tx: TxRequest, signed: Signed) -> Result<SignedTxResult, RpcError> {
    let raw = signed
        .raw_transaction
        .ok_or_else(|| RpcError::internal("the enclave signed but returned no raw transaction"))?;
    if signed.signature.len() != 65 {
        return Err(RpcError::internal("the enclave returned a signature that is not 65 bytes"));
    }
    let r = U256::from_be_slice(&signed.signature[..32]);
    let s = U256::from_be_slice(&signed.signature[32..64]);
    let v = signed.signature[64];
    let parity: u64 = if v >= 27 { (v - 27) as u64 } else { v as u64 } & 1;
    let hash = keccak256(&raw);
    let tx = match tx {
        TxRequest::Eip1559(t) => SignedTxJson {
            access_list: Some(
                t.access_list
                    .into_iter()
                    .map(|e| AccessJson { address: e.address, storage_keys: e.storage_keys })
                    .collect(),
            ),
            chain_id: t.chain_id,
            gas: t.gas_limit,
            gas_price: None,
            hash,
            input: t.data,
            max_fee_per_gas: Some(t.max_fee_per_gas),
            max_priority_fee_per_gas: Some(t.max_priority_fee_per_gas),
            nonce: t.nonce,
            r,
            s,
            to: t.to,
            typ: "0x2",
            v: U256::from(parity),
            value: t.value,
            y_parity: Some(parity),
        },
        TxRequest::Legacy(t) => SignedTxJson {
            access_list: None,
            chain_id: t.chain_id,
            gas: t.gas_limit,
            gas_price: Some(t.gas_price),
            hash,
            input: t.data,
            max_fee_per_gas: None,
            max_priority_fee_per_gas: None,
            nonce: t.nonce,
            r,
            s,
            to: t.to,
            typ: "0x0",
            v: U256::from(t.chain_id) * U256::from(2) + U256::from(35 + parity),
            value: t.value,
            y_parity: None,
        },
        TxRequest::Eip7702 { .. } => {
            return Err(RpcError::internal("the enclave signed a type 4 transaction; refusing to relay it"))
        }
    };
    Ok(SignedTxResult { raw, tx })
}
