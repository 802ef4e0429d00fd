//! Keys generated inside the enclave from the OS CSPRNG (on Nitro, the kernel's RNG is
//! fed by the NSM). Secret material never leaves this module's types: there is no
//! accessor that returns it, and k256 zeroizes secrets on drop (R-TRUST-2).

use alloy_primitives::{Address, Signature, B256};
use k256::ecdsa::SigningKey;
use k256::{PublicKey, SecretKey};
use rand_core::OsRng;

/// A secp256k1 key that signs 32-byte digests computed by the enclave.
pub struct Key {
    secret: SecretKey,
    signing: SigningKey,
    address: Address,
}

impl Key {
    pub fn generate() -> Key {
        Self::from_secret(SecretKey::random(&mut OsRng))
    }

    fn from_secret(secret: SecretKey) -> Key {
        let signing = SigningKey::from(&secret);
        let address = Address::from_public_key(signing.verifying_key());
        Key { secret, signing, address }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn public_key(&self) -> PublicKey {
        self.secret.public_key()
    }

    /// SEC1 compressed public key (33 bytes).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.signing.verifying_key().to_encoded_point(true).as_bytes().to_vec()
    }

    /// Sign a digest the enclave computed. RFC 6979 deterministic, low-s.
    pub fn sign_digest(&self, digest: &B256) -> Result<Signature, k256::ecdsa::Error> {
        let (sig, recid) = self.signing.sign_prehash_recoverable(digest.as_slice())?;
        Ok(Signature::from_signature_and_parity(sig, recid.is_y_odd()))
    }

    /// The key with secret scalar `bytes` (a replica's copy of a session or identity key,
    /// received over an attested channel). `None` for an invalid scalar.
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Option<Key> {
        SecretKey::from_slice(bytes).ok().map(Self::from_secret)
    }

    /// `Err` naming both addresses when this is not the key of `session` (a key sent for the
    /// wrong session in a cluster entry or a snapshot: a leader's bug). The one check of that,
    /// wherever a key arrives with the session it is for. Both are public addresses.
    pub fn check_is_of(&self, session: &Address) -> Result<(), String> {
        if self.address == *session {
            return Ok(());
        }
        Err(format!("the key sent for session {session} is the key of {}", self.address))
    }

    /// The secret scalar, for replication to attested replicas only (a cluster snapshot or
    /// log entry, which never leaves an attested channel). Zeroized when dropped.
    pub(crate) fn secret_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.secret.to_bytes().into())
    }

    /// For ECDH inside the enclave only (stamp key derivation).
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_recover_to_the_address() {
        let k = Key::generate();
        let d = B256::repeat_byte(0x42);
        let sig = k.sign_digest(&d).unwrap();
        assert_eq!(sig.recover_address_from_prehash(&d).unwrap(), k.address());
        assert_ne!(Key::generate().address(), k.address());
        assert_eq!(k.public_key_sec1().len(), 33);
        assert!(!format!("{k:?}").contains(&hex::encode(k.secret().to_bytes())));
    }

    #[test]
    fn a_key_is_checked_against_its_session_and_a_mismatch_names_both() {
        let (k, other) = (Key::generate(), Key::generate());
        assert_eq!(k.check_is_of(&k.address()), Ok(()));
        let why = k.check_is_of(&other.address()).unwrap_err();
        assert_eq!(why, format!("the key sent for session {} is the key of {}", other.address(), k.address()));
    }
}
