//! A Bridle session as an alloy signer and wallet.
//!
//! [`BridleSigner`] implements alloy's [`TxSigner<Signature>`] and [`NetworkWallet`]: the
//! session address is the sender, and every signature is made in the enclave, under the
//! owner's policy, when the agent's stamp proves the request is the agent's. The agent holds
//! its agent key only (for the stamp); the session key never leaves the enclave.
//!
//! ```ignore
//! let bridle = BridleSigner::connect(HOST, &agent_key, session, EnclaveTrust::Pinned(identity)).await?;
//! let provider = ProviderBuilder::new().wallet(bridle).connect_http(node_url);
//! provider.send_transaction(tx).await?;   // filled by alloy, signed by Bridle, sent by alloy
//! ```
//!
//! * **Bridle fills nothing**: alloy's fillers set chain id, nonce, gas and fees from the
//!   node, as for a local key; Bridle signs exactly those values and checks them against
//!   the policy.
//! * **The enclave identity is pinned** ([`EnclaveTrust::Pinned`], from an attestation you
//!   verified: `bridle trust show --host URL --public-key`) and compared with the identity
//!   `GET /v1/status` reports before the stamp key is derived; another one is refused with
//!   `enclave_mismatch`. [`EnclaveTrust::TrustOnFirstUse`] takes the host's word.
//! * **Nothing from the host is trusted**: the signature must recover to the session over
//!   the digest computed here; the envelope is built here from the caller's own transaction.
//! * **Refusals** are [`BridleError`]s (`code`, `rule`, `reason`) inside
//!   `alloy_signer::Error::Other`; [`BridleError::find`] digs one out of any error alloy
//!   returns (e.g. `provider.send_transaction`'s `LocalUsageError`). A refusal is the host's
//!   word (`from_host`; the enclave signs none): everything the host wrote is shown quoted,
//!   every character outside printable ASCII escaped, 1 KiB in all, and a code only if it is
//!   one of Bridle's ([`ErrorCode`]; else `unknown`).
//! * **Every call is bounded**: 30 s in all (connecting, headers and body), a reply read up to
//!   [`MAX_REPLY_BYTES`], and no redirect followed (the host's answer is its own).
//!
//! Wire protocol: `docs/api.md` (`POST /rpc`, `eth_signTransaction`, the `Bridle-Stamp`
//! header).

use alloy_consensus::{SignableTransaction, Signed};
use alloy_network::{Network, NetworkWallet, TxSigner};
use alloy_primitives::{Address, Signature, TxKind, B256, U256};
use bridle_common::error::ErrorCode;
use bridle_common::stamp::{PayloadKind, StampKey};
use k256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The most of one host reply read (a signed transaction's reply is a few KiB).
pub const MAX_REPLY_BYTES: usize = 4 << 20;

/// A host reply's body, read up to [`MAX_REPLY_BYTES`]: a host cannot make the agent hold
/// more (`too_large`).
async fn read_bounded(mut r: reqwest::Response) -> Result<Vec<u8>, BoxError> {
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await? {
        if body.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(Box::new(BridleError::new(
                "too_large",
                format!("the host's reply is over {MAX_REPLY_BYTES} bytes: not read"),
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The most of the host's text quoted in one error (code, rule and reason together): a
/// refusal is not signed, so what it says is shown as data, bounded (as the CLI does).
pub const MAX_QUOTED: usize = 1024;

/// The most quoted of a code that is none of Bridle's, and of a rule.
pub const MAX_ODD_FIELD: usize = 128;

/// `t` as it is shown between double quotes, escaped, within `max` bytes; and how many
/// bytes were cut ([`bridle_common::quote::escape_within`], the CLI's rule too).
fn escaped(t: &str, max: usize) -> (String, usize) {
    bridle_common::quote::escape_within(t, max)
}

fn cut_note(cut: usize) -> String {
    if cut > 0 {
        format!(" (... {cut} bytes cut)")
    } else {
        String::new()
    }
}

/// Text another party wrote (the host, a node) as one quoted value inside a message of
/// ours: between double quotes, `"` and `\` escaped, every character outside printable
/// ASCII written as `\u{…}`, at most `max` bytes between the quotes, what was cut said
/// after them (the CLI's `in_quotes`).
pub fn in_quotes(t: &str, max: usize) -> String {
    let (inside, cut) = escaped(t, max);
    format!("\"{inside}\"{}", cut_note(cut))
}

/// `t` with every character outside printable ASCII (newlines included) written as
/// `\u{…}`, and so a `\` that begins `u{` (`\u{005c}`: another party's literal `\u{1b}`
/// would otherwise read as one of these escapes): safe to print on one line of a terminal.
pub fn printable(t: &str) -> String {
    t.char_indices()
        .map(|(i, c)| {
            if (' '..='~').contains(&c) && !(c == '\\' && t[i + 1..].starts_with("u{")) {
                c.to_string()
            } else {
                format!("\\u{{{:04x}}}", c as u32)
            }
        })
        .collect()
}

/// A JSON value of the host's as text: a string as it is, anything else as its JSON.
fn text_of(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The host's reply as JSON, when it is a success; its error (a JSON-RPC `error`, an HTTP
/// error status) as its word ([`BridleError::from_host_answer`]); a success that is not
/// JSON is `bad_reply`. The host's text is quoted, never a parser's message about it.
async fn host_reply(r: reqwest::Response, what: &str) -> Result<Value, BoxError> {
    let status = r.status();
    let body = read_bounded(r).await?;
    let reply: Option<Value> = serde_json::from_slice(&body).ok();
    let text = || String::from_utf8_lossy(&body).into_owned();
    match reply {
        Some(v) if v.get("error").is_some() => {
            Err(Box::new(BridleError::from_host_answer(&v["error"], Some(status.as_u16()))))
        }
        _ if !status.is_success() => {
            Err(Box::new(BridleError::from_host_answer(&Value::String(text()), Some(status.as_u16()))))
        }
        Some(v) => Ok(v),
        None => Err(Box::new(BridleError::new(
            "bad_reply",
            format!("{what}: the host's reply is not JSON: {}", in_quotes(&text(), 200)),
        ))),
    }
}

/// A refusal or error from Bridle.
///
/// `from_host`: the host's answer — the enclave signs no refusal, so it is the host's word
/// (a host may answer `spend_cap` and keep a signature it was given); otherwise this
/// client's own check failed (`bad_signature`, `enclave_mismatch`, `bad_reply`,
/// `too_large`, …).
///
/// For the host's answer every field is shown as data: `code` is Bridle's stable code (e.g.
/// `spend_cap`) only if the host gave one of [`ErrorCode`], else `unknown` (the host's code,
/// escaped, is `host_code`); `rule` and `reason` are the host's text escaped (every
/// character outside printable ASCII as `\u{…}`, `"` and `\` as `\"` and `\\`), 1 KiB in
/// all. Its `Display` quotes them and says whose word they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridleError {
    pub code: String,
    pub rule: Option<String>,
    pub reason: String,
    /// The host's answer: the enclave signs no refusal, so it is the host's word (a host
    /// may answer `spend_cap` and keep a signature it was given). Otherwise this client's
    /// own check failed (`bad_signature`, `enclave_mismatch`, …).
    pub from_host: bool,
    /// The host's code, escaped, when it is none of Bridle's (`code` is then `unknown`).
    pub host_code: Option<String>,
    /// The host's HTTP status, for its answer.
    pub http_status: Option<u16>,
    /// The whole message, as `Display` shows it.
    text: String,
}

impl std::fmt::Display for BridleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for BridleError {}

impl BridleError {
    /// A failed check of this client's: its own words (made printable all the same).
    fn new(code: &str, reason: impl Into<String>) -> BridleError {
        let (code, reason) = (printable(code), printable(&reason.into()));
        let text = format!("bridle: {code}: {reason}");
        BridleError { code, rule: None, reason, from_host: false, host_code: None, http_status: None, text }
    }

    /// The host's answer `err` — a JSON-RPC `error` (`{code, message, data: {code, rule,
    /// reason}}`), an HTTP error body's `error` (`{code, rule, reason, message}`), or any
    /// other value — as its word: quoted, escaped, bounded.
    pub fn from_host_answer(err: &Value, http_status: Option<u16>) -> BridleError {
        let data = match (&err["data"], &err["code"]) {
            (d, _) if d.is_object() => d,
            (_, Value::String(_)) => err,
            _ => &Value::Null,
        };
        let (code, rule) = (&data["code"], &data["rule"]);
        let reason = match (&data["reason"], &err["message"]) {
            _ if !err.is_object() => text_of(err),
            (Value::Null, Value::Null) => String::new(),
            (Value::Null, m) => text_of(m),
            (r, _) => text_of(r),
        };
        let mut left = MAX_QUOTED;
        let bridle_code = code.as_str().and_then(|c| serde_json::from_value::<ErrorCode>(json!(c)).ok());
        let (code, host_code, code_text) = match (bridle_code, code) {
            (Some(c), _) => (c.as_str().to_string(), None, c.as_str().to_string()),
            (None, Value::Null) => ("unknown".to_string(), None, "unknown (no code given)".to_string()),
            (None, raw) => {
                let (inside, cut) = escaped(&text_of(raw), MAX_ODD_FIELD);
                left -= inside.len();
                let shown = format!("unknown (the host's code: \"{inside}\"{})", cut_note(cut));
                ("unknown".to_string(), Some(inside), shown)
            }
        };
        let (rule, rule_text) = match rule {
            Value::Null => (None, String::new()),
            raw => {
                let (inside, cut) = escaped(&text_of(raw), MAX_ODD_FIELD);
                left -= inside.len();
                let shown = format!(" (rule \"{inside}\"{})", cut_note(cut));
                (Some(inside), shown)
            }
        };
        let (reason, cut) = escaped(&reason, left);
        let text = format!(
            "bridle refused (the host's word; refusals are not signed): {code_text}{rule_text}: \"{reason}\"{}",
            cut_note(cut)
        );
        BridleError { code, rule, reason, from_host: true, host_code, http_status, text }
    }

    /// The Bridle refusal inside an error alloy returned: the error itself, an
    /// `alloy_signer::Error::Other` holding one (also inside a `TransactionBuilderError`,
    /// as a provider's wallet filler returns it), or anything in its source chain.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BridleError> {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if let Some(b) = e.downcast_ref::<BridleError>() {
                return Some(b);
            }
            // Transparent wrappers hide their inner error from `source()`: open them here.
            let signer = e.downcast_ref::<alloy_signer::Error>().or_else(|| match e
                .downcast_ref::<alloy_network::TransactionBuilderError<
                alloy_network::Ethereum,
            >>() {
                Some(alloy_network::TransactionBuilderError::Signer(s)) => Some(s),
                _ => None,
            });
            if let Some(alloy_signer::Error::Other(inner)) = signer {
                if let Some(b) = BridleError::find(inner.as_ref()) {
                    return Some(b);
                }
            }
            cur = e.source();
        }
        None
    }
}

/// Which enclave identity to stamp for.
#[derive(Debug, Clone)]
pub enum EnclaveTrust {
    /// The identity key from an attestation you verified.
    Pinned(PublicKey),
    /// Whatever the host reports (its word, never verified).
    TrustOnFirstUse,
}

impl EnclaveTrust {
    /// A pinned identity from its hex SEC1 form (`0x02…`, as `bridle trust show --public-key`
    /// prints it).
    pub fn pinned_hex(hex_key: &str) -> Result<EnclaveTrust, BoxError> {
        let b = hex::decode(hex_key.trim().trim_start_matches("0x"))?;
        Ok(EnclaveTrust::Pinned(PublicKey::from_sec1_bytes(&b)?))
    }
}

/// The agent key from a `bridle agent keygen` key file (JSON with `private_key`), a file
/// holding 0x-hex, or 0x-hex itself.
pub fn load_agent_key(arg: &str) -> Result<SecretKey, BoxError> {
    let text = std::fs::read_to_string(arg).unwrap_or_else(|_| arg.to_string());
    let text = text.trim();
    let hex_key = if text.starts_with('{') {
        let v: Value = serde_json::from_str(text)?;
        v["private_key"].as_str().ok_or("key file has no private_key")?.to_string()
    } else {
        text.to_string()
    };
    Ok(SecretKey::from_slice(&hex::decode(hex_key.trim_start_matches("0x"))?)?)
}

fn key_address(pk: &PublicKey) -> Address {
    Address::from_public_key(&k256::ecdsa::VerifyingKey::from(pk))
}

/// A remote signer for one Bridle session: alloy's [`TxSigner`] and [`NetworkWallet`].
#[derive(Clone)]
pub struct BridleSigner {
    host: String,
    session: Address,
    agent: Address,
    key: StampKey,
    clock_offset: i64,
    http: reqwest::Client,
}

impl std::fmt::Debug for BridleSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridleSigner")
            .field("host", &self.host)
            .field("session", &self.session)
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl BridleSigner {
    /// Connect for `session`: the enclave identity the host's status reports must be the
    /// pinned one (else `enclave_mismatch`: the enclave restarted, losing its sessions, or
    /// the host serves another enclave); only then is the stamp key derived.
    pub async fn connect(
        host: &str,
        agent_key: &SecretKey,
        session: Address,
        trust: EnclaveTrust,
    ) -> Result<BridleSigner, BoxError> {
        let host = host.trim_end_matches('/').to_string();
        // One deadline for a call, its reply read whole; a host's answer is its own: never a
        // redirect followed to an address it names.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            // Under the host's 60 s idle close: never a request on a connection it is closing.
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let st = host_reply(http.get(format!("{host}/v1/status")).send().await?, "GET /v1/status").await?;
        let pk = &st["identity_public_key"];
        let reported = pk
            .as_str()
            .and_then(|k| hex::decode(k.trim_start_matches("0x")).ok())
            .and_then(|b| PublicKey::from_sec1_bytes(&b).ok())
            .ok_or_else(|| {
                BridleError::new(
                    "bad_reply",
                    format!("the host's status names no enclave identity key: {}", in_quotes(&text_of(pk), 200)),
                )
            })?;
        let enclave = match trust {
            EnclaveTrust::Pinned(pinned) => {
                if key_address(&pinned) != key_address(&reported) {
                    return Err(Box::new(BridleError::new(
                        "enclave_mismatch",
                        format!(
                            "the host reports enclave identity {}, not the pinned {}: the enclave restarted (a new \
                             identity; its sessions are lost) or the host serves another enclave; verify it and \
                             re-attest",
                            key_address(&reported),
                            key_address(&pinned)
                        ),
                    )));
                }
                pinned
            }
            EnclaveTrust::TrustOnFirstUse => {
                eprintln!(
                    "warning: trusting enclave identity {} on the host's word (trust on first use); pin it in \
                     production",
                    key_address(&reported)
                );
                reported
            }
        };
        let agent = key_address(&agent_key.public_key());
        let key = StampKey::derive(agent_key, &enclave, session, agent);
        Ok(BridleSigner { host, session, agent, key, clock_offset: 0, http })
    }

    /// Stamp with the clock moved by `secs` (tests that move the enclave's clock).
    pub fn with_clock_offset(mut self, secs: i64) -> BridleSigner {
        self.clock_offset = secs;
        self
    }

    /// The session address: the transactions' sender.
    pub fn address(&self) -> Address {
        self.session
    }

    /// The agent's address (its key signs nothing on chain; it stamps).
    pub fn agent(&self) -> Address {
        self.agent
    }

    /// Sign `tx` through Bridle's `eth_signTransaction`. Bridle fills nothing: chain id,
    /// nonce, gas and fees must be set (alloy's fillers set them).
    pub async fn sign_tx(&self, tx: &mut dyn SignableTransaction<Signature>) -> Result<Signature, BoxError> {
        let digest = tx.signature_hash();
        let q = |v: u128| format!("{v:#x}");
        let mut obj = json!({
            "from": self.session,
            "chainId": q(tx.chain_id().ok_or("the transaction has no chain id: Bridle fills nothing")? as u128),
            "nonce": q(tx.nonce() as u128),
            "gas": q(tx.gas_limit() as u128),
            "value": format!("{:#x}", tx.value()),
            "data": tx.input(),
        });
        if let TxKind::Call(to) = tx.kind() {
            obj["to"] = json!(to);
        }
        match tx.ty() {
            0 => {
                obj["type"] = json!("0x0");
                obj["gasPrice"] = json!(q(tx.gas_price().ok_or("legacy transaction without gas price")?));
            }
            2 => {
                obj["type"] = json!("0x2");
                obj["maxFeePerGas"] = json!(q(tx.max_fee_per_gas()));
                obj["maxPriorityFeePerGas"] = json!(q(tx.max_priority_fee_per_gas().unwrap_or(0)));
                if let Some(list) = tx.access_list().filter(|l| !l.is_empty()) {
                    obj["accessList"] = json!(list
                        .iter()
                        .map(|e| json!({"address": e.address, "storageKeys": e.storage_keys}))
                        .collect::<Vec<_>>());
                }
            }
            t => {
                return Err(Box::new(BridleError::new(
                    "unsupported",
                    format!("transaction type {t} is not signed by Bridle (legacy and EIP-1559 only)"),
                )))
            }
        }
        let result = self.rpc("eth_signTransaction", json!([obj]), digest).await?;
        let signed = &result["tx"];
        let bad = |why: String| -> BoxError { Box::new(BridleError::new("bad_signature", why)) };
        // Every part a 0x-hex quantity, else `bad_reply` with the reply quoted.
        let field = |k: &str| -> Result<U256, BoxError> {
            signed[k]
                .as_str()
                .filter(|s| s.len() > 2 && s.starts_with("0x") && s[2..].bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|s| U256::from_str(s).ok())
                .ok_or_else(|| {
                    Box::new(BridleError::new(
                        "bad_reply",
                        format!(
                            "the host's reply is not a signed transaction (no {k}): {}",
                            in_quotes(&result.to_string(), 256)
                        ),
                    )) as BoxError
                })
        };
        let parity = match signed.get("yParity") {
            Some(_) => field("yParity")?,
            None => {
                let v = field("v")?;
                if v >= U256::from(35) {
                    (v - U256::from(35)) % U256::from(2)
                } else {
                    v.wrapping_sub(U256::from(27))
                }
            }
        };
        if parity > U256::from(1) {
            return Err(bad(format!("the host's v gives parity {parity}: no signature parity")));
        }
        let parity = parity == U256::from(1);
        let sig = Signature::new(field("r")?, field("s")?, parity);
        // The enclave signs with low s only (EIP-2): the high-s twin recovers alike but no
        // node accepts it, so a host returning one withholds the transaction.
        if sig.normalize_s().is_some() {
            return Err(bad(
                "the signature's s is in the upper half of the curve order (EIP-2): not the enclave's".into()
            ));
        }
        // Trust nothing from the host: the signature must be the session's over our digest.
        let signer = sig.recover_address_from_prehash(&digest).map_err(|e| bad(format!("the signature: {e}")))?;
        if signer != self.session {
            return Err(bad(format!("signature recovers to {signer}, not the session {}", self.session)));
        }
        Ok(sig)
    }

    async fn rpc(&self, method: &str, params: Value, digest: B256) -> Result<Value, BoxError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() as i64 + self.clock_offset;
        let mut nonce = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let stamp = self.key.stamp(self.session, PayloadKind::Transaction, &digest, nonce, now as u64);
        let r = self
            .http
            .post(format!("{}/rpc", self.host))
            .header("Bridle-Session", self.session.to_string())
            .header("Bridle-Stamp", stamp.to_header())
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await?;
        let reply = host_reply(r, method).await?;
        match reply.get("result") {
            Some(result) => Ok(result.clone()),
            None => Err(Box::new(BridleError::new(
                "bad_reply",
                format!("{method}: the host's reply has no result: {}", in_quotes(&reply.to_string(), 200)),
            ))),
        }
    }
}

#[async_trait::async_trait]
impl TxSigner<Signature> for BridleSigner {
    fn address(&self) -> Address {
        self.session
    }

    async fn sign_transaction(&self, tx: &mut dyn SignableTransaction<Signature>) -> alloy_signer::Result<Signature> {
        self.sign_tx(tx).await.map_err(alloy_signer::Error::Other)
    }
}

/// The session as a wallet of one account: `ProviderBuilder::new().wallet(bridle)`.
impl<N: Network> NetworkWallet<N> for BridleSigner
where
    N::TxEnvelope: From<Signed<N::UnsignedTx>>,
    N::UnsignedTx: SignableTransaction<Signature>,
{
    fn default_signer_address(&self) -> Address {
        self.session
    }

    fn has_signer_for(&self, address: &Address) -> bool {
        *address == self.session
    }

    fn signer_addresses(&self) -> impl Iterator<Item = Address> {
        std::iter::once(self.session)
    }

    async fn sign_transaction_from(
        &self,
        sender: Address,
        mut tx: N::UnsignedTx,
    ) -> alloy_signer::Result<N::TxEnvelope> {
        if sender != self.session {
            return Err(alloy_signer::Error::other(BridleError::new(
                "malformed",
                format!("this wallet signs for the session {} only, not {sender}", self.session),
            )));
        }
        let sig = self.sign_tx(&mut tx).await.map_err(alloy_signer::Error::Other)?;
        Ok(tx.into_signed(sig).into())
    }
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    /// A review of 2026-12-06: another party's literal `\u{1b}` printed exactly as an
    /// escaped ESC does; a `\` that begins `u{` is escaped now, so each reads one way only.
    #[test]
    fn a_literal_escape_never_reads_as_one_of_ours() {
        assert_eq!(printable("a\u{1b}b"), "a\\u{001b}b");
        assert_eq!(printable("a\\u{001b}b"), "a\\u{005c}u{001b}b");
        assert_eq!(printable("\\\u{1b}"), "\\\\u{001b}");
        assert_eq!(printable("a\\b"), "a\\b");
    }
}
