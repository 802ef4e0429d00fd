//! One Bridle host, as a load generator sees it: which enclave identity to believe, granting
//! sessions with owner-signed envelopes, stamped signing requests, revocation.
//!
//! Only the given base URL is contacted (no proxy from the environment, no redirects).

use super::stats::Outcome;
use crate::{create_action, erc20_transfer, now, owner_action, Actor};
use alloy_primitives::{address, Address, Signature, B256, U256};
use bridle_common::policy::file::resolve_text;
use bridle_common::policy::Policy;
use bridle_common::protocol::{CreateSession, Revoke, SessionCreated, SignPayload, SignRequest, Status};
use bridle_common::stamp::StampKey;
use rand_core::{OsRng, RngCore};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The token the transfers call (any address: the enclave signs, nothing is broadcast).
pub const TOKEN: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");
/// The recipient of every transfer.
pub const RECIPIENT: Address = Address::repeat_byte(0x11);

/// The enclave identity the stamps are made for, and why it is believed.
#[derive(Debug, Clone)]
pub struct Identity {
    /// SEC1 compressed.
    pub public_key: Vec<u8>,
    pub address: Address,
    /// Where it comes from, for people.
    pub source: String,
    /// False only for the host's word (`--trust-host-identity`).
    pub verified: bool,
}

/// A SEC1 public key (hex, compressed or not): the compressed bytes and the address.
pub fn parse_identity_key(hex_key: &str) -> Result<(Vec<u8>, Address), String> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let s = hex_key.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let b = hex::decode(s).map_err(|e| format!("the enclave key is not hex: {e}"))?;
    let pk = k256::PublicKey::from_sec1_bytes(&b)
        .map_err(|_| format!("0x{} is not a secp256k1 SEC1 public key", hex::encode(&b)))?;
    let address = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&pk));
    Ok((pk.to_encoded_point(true).as_bytes().to_vec(), address))
}

/// The trust file the `bridle` CLI uses: `$BRIDLE_TRUST_FILE`, else
/// `$XDG_CONFIG_HOME/bridle/trust.json`, else `~/.config/bridle/trust.json`.
pub fn default_trust_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BRIDLE_TRUST_FILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Some(x.join("bridle/trust.json"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".config/bridle/trust.json"))
}

/// The trust file's key for a host URL (as the CLI writes it): scheme and authority
/// lowercased, no trailing `/`.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (auth, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            format!("{}://{}{}", scheme.to_ascii_lowercase(), auth.to_ascii_lowercase(), path)
        }
        None => url.to_string(),
    }
}

/// The identity a Bridle trust file holds for `url`, if it is `attested` (established by
/// `bridle trust attest`, which verifies the attestation document) or `pinned`. `Ok(None)`:
/// no such entry (or the file does not exist); an entry trusted on first use is refused.
pub fn identity_from_trust_file(path: &Path, url: &str) -> Result<Option<Identity>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the trust file {}: {e}", path.display())),
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| e.to_string())?.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(format!(
                "the trust file {} is writable by others (mode {:o}): not believed",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the trust file {} is not JSON: {e}", path.display()))?;
    if v["format"] != "bridle-trust/v1" {
        return Err(format!("the trust file {} is not a bridle-trust/v1 file", path.display()));
    }
    let Some(e) = v["hosts"].get(normalize_url(url)) else { return Ok(None) };
    let method = e["method"].as_str().unwrap_or("");
    let how = match method {
        "attested" => {
            let a = &e["attestation"];
            let image = if a["any_image"].as_bool() == Some(true) {
                "any image (development)".to_string()
            } else {
                let pcrs: Vec<String> =
                    a["pcrs"].as_object().map(|m| m.keys().map(|k| format!("PCR{k}")).collect()).unwrap_or_default();
                format!("expected {}", pcrs.join(", "))
            };
            let root = if a["root_pem"].is_string() { "a given root" } else { "the AWS Nitro Root-G1" };
            format!("attested against {root}, {image}")
        }
        "pinned" => "pinned".to_string(),
        "tofu" => {
            return Err(format!(
                "the trust file {} holds for {url} only an identity trusted on first use (the host's word, never \
                 verified): attest it (`bridle trust attest`), give --enclave-key, or pass --trust-host-identity",
                path.display()
            ))
        }
        other => return Err(format!("the trust file {} names an unknown method {other:?}", path.display())),
    };
    let key = e["identity_public_key"].as_str().ok_or("the trust entry has no identity_public_key")?;
    let (public_key, address) = parse_identity_key(key)?;
    let listed: Option<Address> = serde_json::from_value(e["identity_address"].clone()).ok();
    if listed != Some(address) {
        return Err(format!("the trust file {}: the entry's address does not match its key", path.display()));
    }
    Ok(Some(Identity { public_key, address, source: format!("trust file {}: {how}", path.display()), verified: true }))
}

/// A fresh random 32-byte nonce.
pub fn fresh_nonce() -> B256 {
    let mut n = [0u8; 32];
    OsRng.fill_bytes(&mut n);
    B256::from(n)
}

/// One granted session, ready to stamp requests.
pub struct LoadSession {
    pub owner: Actor,
    pub agent: Actor,
    pub session: Address,
    /// Derived once: ECDH with the identity key plus HKDF.
    pub key: StampKey,
    /// The session's chain nonce counter.
    pub nonce: AtomicU64,
}

/// A host and the identity behind it.
pub struct Target {
    pub url: String,
    pub http: reqwest::Client,
    pub identity: Identity,
    /// Enclave time minus this machine's time, seconds (stamps carry enclave time).
    pub clock_offset: i64,
    pub chain_id: u64,
    /// Sign through the JSON-RPC face (`eth_signTransaction` on `POST /rpc`) instead of
    /// `POST /v1/sign`.
    pub rpc: bool,
}

/// An HTTP client that talks to exactly the address it is given.
pub fn http_client(max_idle: usize, timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(max_idle)
        // Under the host's 60 s idle close (host/src/serve.rs).
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .tcp_nodelay(true)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_decode() || e.is_body() {
        "bad_body".into()
    } else {
        "transport".into()
    }
}

async fn reply(r: Result<reqwest::Response, reqwest::Error>) -> Result<(u16, serde_json::Value), String> {
    let r = r.map_err(|e| transport(&e))?;
    let status = r.status().as_u16();
    let body = r.bytes().await.map_err(|e| transport(&e))?;
    Ok((status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)))
}

/// The error code in a host error body.
fn code(v: &serde_json::Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("no_code")
}

/// `GET /v1/status?nonce=…` from `url`, with the receipt checked against `expected` (or
/// against the identity the reply names, when `expected` is `None`: that only shows the
/// key's holder signed it).
pub async fn signed_status(http: &reqwest::Client, url: &str, expected: Option<Address>) -> Result<Status, String> {
    let nonce = fresh_nonce();
    let (c, v) = reply(http.get(format!("{url}/v1/status?nonce={nonce}")).send().await)
        .await
        .map_err(|e| format!("GET {url}/v1/status: {e}"))?;
    if c != 200 {
        return Err(format!("GET {url}/v1/status: HTTP {c}: {v}"));
    }
    let st: Status = serde_json::from_value(v).map_err(|e| format!("GET {url}/v1/status: not a status: {e}"))?;
    let who = expected.unwrap_or(st.identity_address);
    if st.identity_address != who {
        return Err(format!(
            "the host reports enclave identity {}, not the trusted {who}: it does not serve the enclave you trust \
             (or that enclave restarted, which loses every session). Nothing was sent.",
            st.identity_address
        ));
    }
    bridle_common::receipt::verify(&st, who, Some(nonce))
        .map_err(|e| format!("the host's status is not the enclave's word: {e}"))?;
    Ok(st)
}

/// The policy every load session gets: ERC-20 `transfer` on [`TOKEN`] on one chain, a daily
/// cap of `cap` token units (each request moves one), valid for `valid_secs`.
pub fn load_policy(chain_id: u64, cap: u64, valid_secs: u64, now: u64) -> Result<Policy, String> {
    let text = format!(
        "name='bridle-load'\nchains=[{chain_id}]\nvalid_for='{valid_secs}s'\n[tokens]\nT = {{ address = \"{TOKEN}\", \
         decimals = 0 }}\n[[calls]]\ntarget='T'\nfunctions=['transfer(address,uint256)']\n[[limits]]\nmax='{cap} \
         T'\nper='day'\n"
    );
    resolve_text(&text, now).map_err(|d| format!("load policy: {d}"))
}

/// Checks that a session creation's reply binds exactly what was granted (`enclave`,
/// `owner`, `agent`, `policy`'s hash) and that the binding is signed by `enclave`'s
/// identity key.
pub fn check_created(
    created: &SessionCreated,
    enclave: Address,
    owner: Address,
    agent: Address,
    policy: &Policy,
) -> Result<(), String> {
    let b = &created.binding;
    if b.enclave != enclave || b.owner != owner || b.agent != agent || b.policy_hash != policy.hash() {
        return Err(format!("the session binding does not name what was granted: {b:?}"));
    }
    if !recovers_to(&created.binding_signature, &b.digest(), enclave) {
        return Err("the session binding is not signed by the enclave identity".into());
    }
    Ok(())
}

/// Check a signature (65 bytes r ‖ s ‖ v) over `digest` recovers to `who`.
pub fn recovers_to(sig: &[u8], digest: &B256, who: Address) -> bool {
    Signature::from_raw(sig).ok().and_then(|s| s.recover_address_from_prehash(digest).ok()) == Some(who)
}

impl Target {
    pub fn enclave_time(&self) -> u64 {
        (now() as i64 + self.clock_offset).max(0) as u64
    }

    /// Grant a session to a fresh agent, signed by a fresh owner, and check the binding the
    /// enclave signed names what was asked and carries the trusted identity's signature.
    pub async fn grant(&self, policy: &Policy) -> Result<LoadSession, String> {
        let (owner, agent) = (Actor::random(), Actor::random());
        // A fresh owner's nonce: the enclave's time in milliseconds (an owner nonce may be at
        // most ten minutes ahead of the enclave's clock, which need not agree with ours).
        let msg = create_action(self.identity.address, agent.address, policy.hash(), self.enclave_time() * 1000);
        let body = CreateSession {
            auth: owner.sign_owner(&msg),
            agent_public_key: agent.public_key_sec1(),
            policy: policy.clone(),
        };
        let (c, v) = reply(self.http.post(format!("{}/v1/sessions", self.url)).json(&body).send().await)
            .await
            .map_err(|e| format!("POST /v1/sessions: {e}"))?;
        if c != 200 {
            return Err(format!("POST /v1/sessions: HTTP {c}: {v}"));
        }
        let created: SessionCreated =
            serde_json::from_value(v).map_err(|e| format!("POST /v1/sessions: not a SessionCreated: {e}"))?;
        check_created(&created, self.identity.address, owner.address, agent.address, policy)?;
        let b = &created.binding;
        let pk = k256::PublicKey::from_sec1_bytes(&self.identity.public_key).map_err(|e| e.to_string())?;
        let key = StampKey::derive(&agent.secret, &pk, b.session, agent.address);
        Ok(LoadSession { owner, agent, session: b.session, key, nonce: AtomicU64::new(0) })
    }

    /// One stamped ERC-20 transfer (one token unit) as `s`'s agent, with the session's next
    /// chain nonce. A 200 counts as signed only if the digest is ours and, when `check_sig`,
    /// the signature recovers to the session.
    pub async fn sign(&self, s: &LoadSession, check_sig: bool) -> Outcome {
        let nonce = s.nonce.fetch_add(1, Ordering::Relaxed);
        let tx = erc20_transfer(self.chain_id, nonce, TOKEN, RECIPIENT, U256::from(1));
        let Some(digest) = tx.build().map(|b| b.signing_hash()) else {
            return Outcome::Error("unbuildable_tx".into());
        };
        let payload = SignPayload::Transaction(tx);
        let mut n = [0u8; 16];
        OsRng.fill_bytes(&mut n);
        let stamp = s.key.stamp(s.session, payload.kind(), &digest, n, self.enclave_time());
        if self.rpc {
            return self.sign_rpc(s, payload, stamp, digest, check_sig).await;
        }
        let req = SignRequest { session: s.session, payload, stamp };
        let (c, v) = match reply(self.http.post(format!("{}/v1/sign", self.url)).json(&req).send().await).await {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
        match c {
            200 => {
                let got: Option<B256> = serde_json::from_value(v["digest"].clone()).ok();
                if got != Some(digest) {
                    return Outcome::Error("wrong_digest".into());
                }
                if check_sig {
                    let sig: Option<alloy_primitives::Bytes> = serde_json::from_value(v["signature"].clone()).ok();
                    if !sig.is_some_and(|sig| recovers_to(&sig, &digest, s.session)) {
                        return Outcome::Error("bad_signature".into());
                    }
                }
                Outcome::Ok
            }
            403 => Outcome::Refused(code(&v).to_string()),
            _ => Outcome::Error(format!("http_{c}_{}", code(&v))),
        }
    }

    /// The same transfer as `eth_signTransaction` (the Ethereum JSON transaction object, the
    /// session and stamp in the `Bridle-Session` / `Bridle-Stamp` headers). Signed only if
    /// the reply's nonce is ours and, when `check_sig`, its r, s, yParity recover to the
    /// session over our own signing hash.
    async fn sign_rpc(
        &self,
        s: &LoadSession,
        payload: SignPayload,
        stamp: bridle_common::stamp::Stamp,
        digest: B256,
        check_sig: bool,
    ) -> Outcome {
        use serde_json::json;
        let SignPayload::Transaction(bridle_common::tx::TxRequest::Eip1559(t)) = payload else {
            return Outcome::Error("not_eip1559".into());
        };
        let q = |v: u128| format!("{v:#x}");
        let body = json!({"jsonrpc": "2.0", "id": t.nonce, "method": "eth_signTransaction", "params": [{
            "from": s.session, "to": t.to, "type": "0x2", "chainId": q(t.chain_id.into()),
            "nonce": q(t.nonce.into()), "gas": q(t.gas_limit.into()), "maxFeePerGas": q(t.max_fee_per_gas),
            "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas), "value": format!("{:#x}", t.value),
            "input": t.data,
        }]});
        let req = self
            .http
            .post(format!("{}/rpc", self.url))
            .header("bridle-session", s.session.to_string())
            .header("bridle-stamp", stamp.to_header())
            .json(&body);
        let (c, v) = match reply(req.send().await).await {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
        if c != 200 {
            return Outcome::Error(format!("http_{c}_rpc"));
        }
        if let Some(e) = v.get("error") {
            let code = e["data"]["code"].as_str().unwrap_or("no_code").to_string();
            return match e["code"].as_i64() {
                Some(-32003) => Outcome::Refused(code),
                _ => Outcome::Error(format!("rpc_{code}")),
            };
        }
        let tx = &v["result"]["tx"];
        if tx["nonce"].as_str() != Some(q(t.nonce.into()).as_str()) || !v["result"]["raw"].is_string() {
            return Outcome::Error("wrong_reply".into());
        }
        if check_sig {
            let word = |f: &str| serde_json::from_value::<U256>(tx[f].clone()).ok();
            let parity = tx["yParity"].as_str().map(|p| p == "0x1");
            let (Some(r), Some(sv), Some(p)) = (word("r"), word("s"), parity) else {
                return Outcome::Error("bad_signature".into());
            };
            let mut sig = [0u8; 65];
            sig[..32].copy_from_slice(&r.to_be_bytes::<32>());
            sig[32..64].copy_from_slice(&sv.to_be_bytes::<32>());
            sig[64] = 27 + p as u8;
            if !recovers_to(&sig, &digest, s.session) {
                return Outcome::Error("bad_signature".into());
            }
        }
        Outcome::Ok
    }

    /// The owner revokes the session. Returns whether the host said 200.
    pub async fn revoke(&self, s: &LoadSession) -> bool {
        let msg = owner_action(
            bridle_common::owner::action::REVOKE,
            self.identity.address,
            s.session,
            s.agent.address,
            B256::ZERO,
        );
        let body = Revoke { auth: s.owner.sign_owner(&msg), session: s.session };
        let url = format!("{}/v1/sessions/{}/revoke", self.url, s.session);
        matches!(reply(self.http.post(url).json(&body).send().await).await, Ok((200, _)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_and_urls() {
        let a = Actor::random();
        let (pk, addr) = parse_identity_key(&format!("0x{}", hex::encode(a.public_key_sec1()))).unwrap();
        assert_eq!((pk.len(), addr), (33, a.address));
        assert!(parse_identity_key("0x02").is_err());
        assert!(parse_identity_key("zz").is_err());
        assert_eq!(normalize_url("HTTP://Host:1/x/"), "http://host:1/x");
    }

    #[test]
    fn trust_file_entries() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("trust.json");
        let a = Actor::random();
        let entry = |method: &str| {
            serde_json::json!({"format": "bridle-trust/v1", "hosts": {"http://127.0.0.1:9": {
                "identity_public_key": format!("0x{}", hex::encode(a.public_key_sec1())),
                "identity_address": a.address, "method": method, "established_at": 1,
                "attestation": {"root_sha256": "00", "root_pem": "x", "pcrs": {}, "any_image": true,
                                "allow_debug": false, "module_id": "m", "timestamp_ms": 1}}}})
        };
        let write = |v: serde_json::Value, mode: u32| {
            std::fs::write(&p, v.to_string()).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        assert!(identity_from_trust_file(&p, "http://127.0.0.1:9").unwrap().is_none());
        write(entry("attested"), 0o600);
        let id = identity_from_trust_file(&p, "HTTP://127.0.0.1:9/").unwrap().unwrap();
        assert_eq!(id.address, a.address);
        assert!(id.verified && id.source.contains("attested") && id.source.contains("any image"));
        assert!(identity_from_trust_file(&p, "http://127.0.0.1:10").unwrap().is_none());
        write(entry("tofu"), 0o600);
        assert!(identity_from_trust_file(&p, "http://127.0.0.1:9").unwrap_err().contains("first use"));
        write(entry("pinned"), 0o622);
        assert!(identity_from_trust_file(&p, "http://127.0.0.1:9").unwrap_err().contains("writable by others"));
    }

    #[test]
    fn the_load_policy_resolves() {
        let t = now();
        let p = load_policy(31337, 1_000_000, 7200, t).unwrap();
        assert_eq!(p.valid_until, Some(t + 7200));
    }

    #[test]
    fn a_creation_reply_must_bind_what_was_granted_under_the_identity() {
        use bridle_common::protocol::SessionBinding;
        let (enclave, owner, agent, session, other) =
            (Actor::random(), Actor::random(), Actor::random(), Actor::random(), Actor::random());
        let policy = load_policy(31337, 1_000_000, 7200, now()).unwrap();
        let sign = |who: &Actor, b: &SessionBinding| {
            let sk = k256::ecdsa::SigningKey::from(&who.secret);
            let (sig, recid) = sk.sign_prehash_recoverable(b.digest().as_slice()).unwrap();
            Signature::from_signature_and_parity(sig, recid.is_y_odd()).as_bytes().to_vec().into()
        };
        let binding = SessionBinding {
            enclave: enclave.address,
            session: session.address,
            owner: owner.address,
            agent: agent.address,
            policy_hash: policy.hash(),
            created_at: 1,
            valid_until: 2,
        };
        let created = |b: SessionBinding, by: &Actor| SessionCreated {
            binding_signature: sign(by, &b),
            binding: b,
            attestation: None,
            receipt: None,
        };
        let check = |c: &SessionCreated| check_created(c, enclave.address, owner.address, agent.address, &policy);
        assert_eq!(check(&created(binding.clone(), &enclave)), Ok(()));
        let wrong_policy = SessionBinding { policy_hash: B256::repeat_byte(7), ..binding.clone() };
        assert!(check(&created(wrong_policy, &enclave)).unwrap_err().contains("does not name"));
        let wrong_owner = SessionBinding { owner: other.address, ..binding.clone() };
        assert!(check(&created(wrong_owner, &enclave)).unwrap_err().contains("does not name"));
        let wrong_agent = SessionBinding { agent: other.address, ..binding.clone() };
        assert!(check(&created(wrong_agent, &enclave)).unwrap_err().contains("does not name"));
        let wrong_enclave = SessionBinding { enclave: other.address, ..binding.clone() };
        assert!(check(&created(wrong_enclave, &other)).unwrap_err().contains("does not name"));
        assert!(check(&created(binding, &other)).unwrap_err().contains("not signed"));
    }
}
