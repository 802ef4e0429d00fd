//! Key files: JSON with the address, public key and private key, written 0600.

use alloy_primitives::{Address, Signature, B256};
use anyhow::{bail, Context, Result};
use k256::ecdsa::SigningKey;
use k256::SecretKey;
use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub kind: String,
    pub address: Address,
    /// SEC1 compressed, hex.
    pub public_key: String,
    pub private_key: String,
}

pub struct LoadedKey {
    pub secret: SecretKey,
    pub address: Address,
}

impl LoadedKey {
    pub fn public_key_hex(&self) -> String {
        format!("0x{}", hex::encode(self.secret.public_key().to_sec1_bytes_compressed()))
    }

    pub fn sign_digest(&self, d: &B256) -> Result<Signature> {
        let sk = SigningKey::from(&self.secret);
        let (sig, recid) = sk.sign_prehash_recoverable(d.as_slice())?;
        Ok(Signature::from_signature_and_parity(sig, recid.is_y_odd()))
    }
}

trait Compressed {
    fn to_sec1_bytes_compressed(&self) -> Vec<u8>;
}
impl Compressed for k256::PublicKey {
    fn to_sec1_bytes_compressed(&self) -> Vec<u8> {
        use k256::elliptic_curve::sec1::ToEncodedPoint;
        self.to_encoded_point(true).as_bytes().to_vec()
    }
}

pub fn address_of(secret: &SecretKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&secret.public_key()))
}

/// Generate a key and write it with mode 0600; refuses to overwrite unless `force`.
pub fn generate(path: &Path, kind: &str, force: bool) -> Result<LoadedKey> {
    let secret = SecretKey::random(&mut OsRng);
    let address = address_of(&secret);
    let k = LoadedKey { secret, address };
    let file = KeyFile {
        kind: kind.to_string(),
        address,
        public_key: k.public_key_hex(),
        private_key: format!("0x{}", hex::encode(k.secret.to_bytes())),
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).with_context(|| format!("cannot create {} (exists? use --force)", path.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
    f.write_all(b"\n")?;
    Ok(k)
}

/// Load a key file (JSON as written by keygen) or a bare 0x-hex private key file.
pub fn load(path: &Path) -> Result<LoadedKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?;
    let hex_key = if text.trim_start().starts_with('{') {
        let f: KeyFile =
            serde_json::from_str(&text).with_context(|| format!("{} is not a bridle key file", path.display()))?;
        f.private_key
    } else {
        text.trim().to_string()
    };
    let bytes = hex::decode(hex_key.trim_start_matches("0x")).context("private key is not hex")?;
    if bytes.len() != 32 {
        bail!("private key must be 32 bytes");
    }
    let secret = SecretKey::from_slice(&bytes).context("not a valid secp256k1 private key")?;
    let address = address_of(&secret);
    Ok(LoadedKey { secret, address })
}

/// An agent public key given as hex, or a path to an agent key file (its public part).
pub fn agent_public_key(arg: &str) -> Result<Vec<u8>> {
    let p = Path::new(arg);
    if p.exists() {
        let text = std::fs::read_to_string(p)?;
        if let Ok(f) = serde_json::from_str::<KeyFile>(&text) {
            return Ok(hex::decode(f.public_key.trim_start_matches("0x"))?);
        }
        return hex::decode(text.trim().trim_start_matches("0x")).context("public key file is not hex");
    }
    let b = hex::decode(arg.trim_start_matches("0x")).context("agent public key must be hex or a key file path")?;
    k256::PublicKey::from_sec1_bytes(&b).context("not a secp256k1 SEC1 public key")?;
    Ok(b)
}
