//! Transaction requests as the enclave receives them, and their signing digests.
//!
//! The enclave never signs a caller-supplied hash (R-TRUST-1): it builds the alloy
//! transaction from these fields and computes the digest itself.

use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use serde::{Deserialize, Serialize};

/// An EIP-2930 access list entry.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessEntry {
    pub address: Address,
    pub storage_keys: Vec<B256>,
}

/// An EIP-1559 (type 2) transaction.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Eip1559Request {
    pub chain_id: u64,
    pub nonce: u64,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    pub gas_limit: u64,
    /// `None` creates a contract.
    pub to: Option<Address>,
    #[serde(default)]
    pub value: U256,
    #[serde(default)]
    pub data: Bytes,
    #[serde(default)]
    pub access_list: Vec<AccessEntry>,
}

/// A legacy transaction; always signed with EIP-155 replay protection.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegacyRequest {
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_price: u128,
    pub gas_limit: u64,
    pub to: Option<Address>,
    #[serde(default)]
    pub value: U256,
    #[serde(default)]
    pub data: Bytes,
}

/// An EIP-7702 authorization tuple, as asked for. Always refused.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationRequest {
    pub chain_id: U256,
    pub address: Address,
    pub nonce: u64,
}

/// A transaction to sign.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TxRequest {
    Eip1559(Eip1559Request),
    Legacy(LegacyRequest),
    /// Type 4: carried only so that it can be refused with its own code (R-SIGN-1).
    Eip7702 {
        chain_id: u64,
        #[serde(default)]
        authorization_list: Vec<AuthorizationRequest>,
    },
}

/// One call a request would make: what the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// `None`: contract creation.
    pub to: Option<Address>,
    pub value: U256,
    pub data: Bytes,
}

/// Gas terms a request would pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gas {
    pub gas_limit: u64,
    /// Maximum fee per gas (gas price for legacy).
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    /// Gas the transaction's access list costs before its call runs (EIP-2930: 2 400 per
    /// address, 1 900 per storage key); 0 without one.
    pub access_list_gas: u64,
    /// The account pays this gas to whoever bundles the request, and that may be the agent:
    /// a user operation without a paymaster (its prefund is paid at the operation's own gas
    /// price, whatever the bundle used). Its maximum cost is native value leaving the
    /// account, charged to the native coin's line whatever `gas.count_in_native` says.
    pub paid_to_bundler: bool,
}

/// What an access list costs up front (EIP-2930), saturating.
pub fn access_list_gas(list: &[AccessEntry]) -> u64 {
    list.iter().fold(0u64, |acc, e| {
        acc.saturating_add(2_400).saturating_add((e.storage_keys.len() as u64).saturating_mul(1_900))
    })
}

impl Gas {
    /// The most this request can pay for gas: `gas_limit × max_fee_per_gas`.
    pub fn max_cost(&self) -> U256 {
        U256::from(self.gas_limit) * U256::from(self.max_fee_per_gas)
    }
}

/// A built transaction ready to be hashed and signed.
#[derive(Debug, Clone)]
pub enum BuiltTx {
    Eip1559(TxEip1559),
    Legacy(TxLegacy),
}

impl BuiltTx {
    /// The digest the session key signs.
    pub fn signing_hash(&self) -> B256 {
        match self {
            BuiltTx::Eip1559(tx) => tx.signature_hash(),
            BuiltTx::Legacy(tx) => tx.signature_hash(),
        }
    }

    /// The EIP-2718 encoding of the signed transaction, ready for `eth_sendRawTransaction`.
    pub fn encode_signed(self, sig: Signature) -> Bytes {
        match self {
            BuiltTx::Eip1559(tx) => tx.into_signed(sig).encoded_2718().into(),
            BuiltTx::Legacy(tx) => tx.into_signed(sig).encoded_2718().into(),
        }
    }
}

/// The fees `(max fee per gas, max priority fee per gas)` of a signed EIP-1559 transaction
/// in its EIP-2718 encoding (what a sweep's revocations are); `None` for anything else.
pub fn eip1559_fees(raw: &[u8]) -> Option<(u128, u128)> {
    use alloy_consensus::TxEnvelope;
    use alloy_eips::eip2718::Decodable2718;
    match TxEnvelope::decode_2718(&mut &raw[..]).ok()? {
        TxEnvelope::Eip1559(s) => Some((s.tx().max_fee_per_gas, s.tx().max_priority_fee_per_gas)),
        _ => None,
    }
}

fn kind(to: Option<Address>) -> TxKind {
    match to {
        Some(a) => TxKind::Call(a),
        None => TxKind::Create,
    }
}

impl TxRequest {
    pub fn chain_id(&self) -> u64 {
        match self {
            TxRequest::Eip1559(t) => t.chain_id,
            TxRequest::Legacy(t) => t.chain_id,
            TxRequest::Eip7702 { chain_id, .. } => *chain_id,
        }
    }

    /// The transaction's nonce (0 for type 4, which is never signed).
    pub fn nonce(&self) -> u64 {
        match self {
            TxRequest::Eip1559(t) => t.nonce,
            TxRequest::Legacy(t) => t.nonce,
            TxRequest::Eip7702 { .. } => 0,
        }
    }

    /// The single call this transaction makes.
    pub fn call(&self) -> Option<Call> {
        match self {
            TxRequest::Eip1559(t) => Some(Call { to: t.to, value: t.value, data: t.data.clone() }),
            TxRequest::Legacy(t) => Some(Call { to: t.to, value: t.value, data: t.data.clone() }),
            TxRequest::Eip7702 { .. } => None,
        }
    }

    pub fn gas(&self) -> Option<Gas> {
        match self {
            TxRequest::Eip1559(t) => Some(Gas {
                paid_to_bundler: false,
                gas_limit: t.gas_limit,
                max_fee_per_gas: t.max_fee_per_gas,
                max_priority_fee_per_gas: t.max_priority_fee_per_gas,
                access_list_gas: access_list_gas(&t.access_list),
            }),
            TxRequest::Legacy(t) => Some(Gas {
                paid_to_bundler: false,
                gas_limit: t.gas_limit,
                max_fee_per_gas: t.gas_price,
                max_priority_fee_per_gas: t.gas_price,
                access_list_gas: 0,
            }),
            TxRequest::Eip7702 { .. } => None,
        }
    }

    /// Build the alloy transaction. `None` for type 4, which is never built.
    pub fn build(&self) -> Option<BuiltTx> {
        match self {
            TxRequest::Eip1559(t) => Some(BuiltTx::Eip1559(TxEip1559 {
                chain_id: t.chain_id,
                nonce: t.nonce,
                gas_limit: t.gas_limit,
                max_fee_per_gas: t.max_fee_per_gas,
                max_priority_fee_per_gas: t.max_priority_fee_per_gas,
                to: kind(t.to),
                value: t.value,
                access_list: AccessList(
                    t.access_list
                        .iter()
                        .map(|e| AccessListItem { address: e.address, storage_keys: e.storage_keys.clone() })
                        .collect(),
                ),
                input: t.data.clone(),
            })),
            TxRequest::Legacy(t) => Some(BuiltTx::Legacy(TxLegacy {
                chain_id: Some(t.chain_id),
                nonce: t.nonce,
                gas_price: t.gas_price,
                gas_limit: t.gas_limit,
                to: kind(t.to),
                value: t.value,
                input: t.data.clone(),
            })),
            TxRequest::Eip7702 { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    #[test]
    fn eip1559_digest_and_raw_round_trip() {
        use alloy_consensus::transaction::SignerRecoverable;
        use alloy_consensus::TxEnvelope;
        use alloy_eips::eip2718::Decodable2718;
        let req = TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: 7,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 21_000,
            to: Some(address!("00000000000000000000000000000000000000aa")),
            value: U256::from(5u64),
            data: Bytes::new(),
            access_list: vec![],
        });
        let key = k256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
        let built = req.build().unwrap();
        let digest = built.signing_hash();
        let (sig, recid) = key.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let sig = Signature::from_signature_and_parity(sig, recid.is_y_odd());
        let raw = built.encode_signed(sig);
        let env = TxEnvelope::decode_2718(&mut raw.as_ref()).unwrap();
        let expected = Address::from_public_key(key.verifying_key());
        assert_eq!(env.recover_signer().unwrap(), expected);
        assert_eq!(eip1559_fees(&raw), Some((30_000_000_000, 1_000_000_000)));
        assert_eq!(eip1559_fees(&raw[..raw.len() - 1]), None, "cut short");
        assert_eq!(eip1559_fees(&[]), None);
    }
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn json_and_cbor_round_trip_with_large_fees() {
        let req = TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: 0,
            max_fee_per_gas: u128::MAX,
            max_priority_fee_per_gas: 1,
            gas_limit: 21_000,
            to: None,
            value: U256::MAX,
            data: Bytes::from(vec![1, 2]),
            access_list: vec![],
        });
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.starts_with("{\"eip1559\":"), "{json}");
        assert_eq!(serde_json::from_str::<TxRequest>(&json).unwrap(), req);
        let cbor = crate::frame::to_cbor(&req).unwrap();
        assert_eq!(crate::frame::from_cbor::<TxRequest>(&cbor).unwrap(), req);
    }
}
