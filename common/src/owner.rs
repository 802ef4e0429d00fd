//! Owner envelopes: EIP-712 typed data that an ordinary wallet signs (R-TRUST-3).
//!
//! Domain: name "Bridle", version "1" (no chain id, so any wallet on any network can
//! sign). The message names the action, the enclave identity address (a message for one
//! enclave cannot be replayed at another, or at the same enclave after a restart), the
//! session, the agent, the policy hash, a subject digest and a nonce that must strictly
//! increase per owner.

use alloy_primitives::{Address, Signature, B256};
use alloy_sol_types::{eip712_domain, sol, Eip712Domain, SolStruct};
use serde::{Deserialize, Serialize};

sol! {
    /// The one typed-data struct an owner signs.
    #[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
    struct OwnerAction {
        string action;
        address enclave;
        address session;
        address agent;
        bytes32 policyHash;
        bytes32 subject;
        uint64 nonce;
    }
}

/// Action names.
pub mod action {
    pub const CREATE_SESSION: &str = "create_session";
    pub const UPDATE_POLICY: &str = "update_policy";
    pub const REVOKE: &str = "revoke";
    pub const REVOKE_ALL: &str = "revoke_all";
    pub const APPROVE_PENDING: &str = "approve_pending";
    /// Refuse one held request (subject: its digest).
    pub const DENY_PENDING: &str = "deny_pending";
    /// A revocation sweep with the owner's fees (subject: `Sweep::terms_digest`).
    pub const SWEEP: &str = "sweep";
    /// Let a cluster's nodes of another image hold the key (subject: the image digest,
    /// keccak256(PCR0 ‖ PCR1 ‖ PCR2); session zero: every session of the owner).
    pub const ALLOW_IMAGE: &str = "allow_image";
}

/// The EIP-712 domain of every owner message.
pub fn domain() -> Eip712Domain {
    eip712_domain! { name: "Bridle", version: "1", }
}

impl OwnerAction {
    /// The EIP-712 digest the owner signs.
    pub fn digest(&self) -> B256 {
        self.eip712_signing_hash(&domain())
    }

    /// The typed data as `eth_signTypedData_v4` JSON, for wallets.
    pub fn typed_data_json(&self) -> serde_json::Value {
        serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"}
                ],
                "OwnerAction": [
                    {"name": "action", "type": "string"},
                    {"name": "enclave", "type": "address"},
                    {"name": "session", "type": "address"},
                    {"name": "agent", "type": "address"},
                    {"name": "policyHash", "type": "bytes32"},
                    {"name": "subject", "type": "bytes32"},
                    {"name": "nonce", "type": "uint64"}
                ]
            },
            "primaryType": "OwnerAction",
            "domain": {"name": "Bridle", "version": "1"},
            "message": {
                "action": self.action,
                "enclave": self.enclave.to_checksum(None),
                "session": self.session.to_checksum(None),
                "agent": self.agent.to_checksum(None),
                "policyHash": self.policyHash.to_string(),
                "subject": self.subject.to_string(),
                "nonce": self.nonce,
            }
        })
    }

    /// Recover the signer of a 65-byte signature over this action.
    pub fn recover(&self, signature: &[u8]) -> Option<Address> {
        let sig = Signature::from_raw(signature).ok()?;
        sig.recover_address_from_prehash(&self.digest()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    fn sample() -> OwnerAction {
        OwnerAction {
            action: action::CREATE_SESSION.into(),
            enclave: address!("1111111111111111111111111111111111111111"),
            session: Address::ZERO,
            agent: address!("2222222222222222222222222222222222222222"),
            policyHash: B256::repeat_byte(3),
            subject: B256::ZERO,
            nonce: 1,
        }
    }

    #[test]
    fn json_matches_struct_hash() {
        // The JSON we hand to wallets hashes to the same digest (alloy-dyn-abi's
        // independent EIP-712 implementation).
        let a = sample();
        let td: alloy_dyn_abi::TypedData = serde_json::from_value(a.typed_data_json()).unwrap();
        assert_eq!(td.eip712_signing_hash().unwrap(), a.digest());
    }

    #[test]
    fn recover_round_trip() {
        let key = k256::ecdsa::SigningKey::from_slice(&[9u8; 32]).unwrap();
        let a = sample();
        let (sig, recid) = key.sign_prehash_recoverable(a.digest().as_slice()).unwrap();
        let sig = Signature::from_signature_and_parity(sig, recid.is_y_odd());
        let who = Address::from_public_key(key.verifying_key());
        assert_eq!(a.recover(&sig.as_bytes()), Some(who));
        let mut other = a.clone();
        other.nonce = 2;
        assert_ne!(other.recover(&sig.as_bytes()), Some(who));
        assert_eq!(a.recover(&[0u8; 10]), None);
    }
}
