//! `bridle trust`: establish, show and forget the enclave identity trusted for a host; and
//! the attestation checks the trust store rests on (also used by `bridle dev` and
//! `owner grant`).

use crate::client::Host;
use crate::trust::{self, Attested, Entry, Method};
use crate::util::now;
use anyhow::{anyhow, bail, Context, Result};
use bridle_attestation::{decode_document_input, verify, TrustedRoot, VerifiedDocument, VerifyOptions, VerifyTime};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum TrustCmd {
    /// Verify the host's enclave from a fresh attestation document (root certificate and
    /// expected PCRs) and trust its identity key for this host.
    Attest(AttestArgs),
    /// Trust an enclave identity public key you verified yourself for this host.
    Pin {
        #[command(flatten)]
        host: crate::util::HostArg,
        /// The identity public key (hex SEC1), e.g. `public_key` of a verified attestation.
        #[arg(long, value_name = "HEX")]
        identity_key: String,
    },
    /// Show the trusted identities (all hosts, or one).
    Show {
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Print only the identity public key of --host (for scripts and client helpers);
        /// what it rests on goes to stderr. Refused for an identity trusted on first use
        /// (the host's word) unless --allow-unverified.
        #[arg(long, requires = "host")]
        public_key: bool,
        /// With --public-key: print it even when it was trusted on first use.
        #[arg(long, requires = "public_key")]
        allow_unverified: bool,
        #[arg(long)]
        json: bool,
    },
    /// Forget the identity trusted for a host.
    Forget {
        #[command(flatten)]
        host: crate::util::HostArg,
    },
}

/// `bridle trust attest`.
#[derive(Args)]
pub struct AttestArgs {
    #[command(flatten)]
    pub host: crate::util::HostArg,
    /// Trusted root certificate (PEM or DER) instead of the embedded AWS Nitro Enclaves
    /// Root-G1 (the development enclave's mock root: `<dev dir>/mock-root.pem`).
    #[arg(long, value_name = "PEM")]
    pub root: Option<PathBuf>,
    /// Expected PCR value (repeatable), e.g. --pcr 0=17bf8f04…
    #[arg(long = "pcr", value_name = "N=HEX", value_parser = parse_pcr)]
    pub pcrs: Vec<(u16, Vec<u8>)>,
    /// Expected PCRs from a release's pcrs.json.
    #[arg(long = "pcrs", value_name = "FILE")]
    pub pcrs_file: Option<PathBuf>,
    /// Accept whatever image the document measures. Development only: then the document
    /// proves only that some Nitro enclave (or the mock) holds the key.
    #[arg(long)]
    pub any_image: bool,
    /// Accept a debug-mode enclave (all-zero PCR0/1/2). Never for production.
    #[arg(long)]
    pub allow_debug: bool,
    /// How old the document may be, seconds.
    #[arg(long, default_value_t = 300)]
    pub max_age: u64,
}

fn parse_pcr(s: &str) -> Result<(u16, Vec<u8>), String> {
    let (index, value) = s.split_once('=').ok_or_else(|| "expected N=HEX, e.g. 0=17bf8f04…".to_string())?;
    let index = index.trim();
    let index = match index.get(..3) {
        Some(p) if p.eq_ignore_ascii_case("pcr") => index.get(3..).unwrap_or(""),
        _ => index,
    };
    let index: u16 = index.parse().map_err(|_| format!("PCR index {index:?} is not a number"))?;
    let v = value.trim();
    let v = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).unwrap_or(v);
    let value = hex::decode(v).map_err(|e| format!("not hex: {e}"))?;
    if ![32, 48, 64].contains(&value.len()) {
        return Err(format!("PCR{index} value has {} bytes: expected 48 (96 hex digits)", value.len()));
    }
    Ok((index, value))
}

/// What a document must be verified against: a root and expected PCRs.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// `None`: the AWS Nitro Root-G1.
    pub root_pem: Option<String>,
    pub pcrs: BTreeMap<u16, Vec<u8>>,
    pub any_image: bool,
    pub allow_debug: bool,
}

impl Expectation {
    /// From a trust entry's record.
    pub fn of(a: &Attested) -> Result<Expectation> {
        let mut pcrs = BTreeMap::new();
        for (i, v) in &a.pcrs {
            pcrs.insert(*i, hex::decode(v.trim_start_matches("0x")).context("a PCR in the trust file")?);
        }
        Ok(Expectation { root_pem: a.root_pem.clone(), pcrs, any_image: a.any_image, allow_debug: a.allow_debug })
    }

    fn root(&self) -> Result<TrustedRoot> {
        match &self.root_pem {
            None => Ok(TrustedRoot::AwsNitroRootG1),
            Some(pem) => TrustedRoot::from_pem(pem).map_err(|e| anyhow!("root certificate: {e}")),
        }
    }

    /// Verify `doc` now (at most `max_age` s old) with optional expected nonce and user data.
    pub fn verify(
        &self,
        doc: &[u8],
        max_age: u64,
        nonce: Option<&[u8]>,
        user_data: Option<&[u8]>,
    ) -> Result<VerifiedDocument> {
        let options = VerifyOptions {
            root: self.root()?,
            time: VerifyTime::Now { max_age_secs: max_age },
            expected_pcrs: self.pcrs.clone(),
            expected_nonce: nonce.map(<[u8]>::to_vec),
            expected_public_key: None,
            expected_user_data: user_data.map(<[u8]>::to_vec),
            allow_debug: self.allow_debug,
            any_image: self.any_image,
        };
        verify(doc, &options).map_err(|e| anyhow!("{e}"))
    }
}

/// A root certificate file (PEM or DER) as PEM text.
fn read_root(p: &PathBuf) -> Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let pem = String::from_utf8_lossy(&bytes).to_string();
        TrustedRoot::from_pem(&pem).map_err(|e| anyhow!("--root {}: {e}", p.display()))?;
        Ok(pem)
    } else {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
        Ok(format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n")))
    }
}

/// A fresh attestation document from the host for `nonce`.
pub fn fetch_attestation(host: &Host, nonce: &[u8]) -> Result<Vec<u8>> {
    let v: serde_json::Value = host.get(&format!("/v1/attestation?nonce=0x{}", hex::encode(nonce)))?;
    let text = v["document_base64"]
        .as_str()
        .or_else(|| v["document"].as_str())
        .ok_or_else(|| anyhow!("the host's attestation reply has no document"))?;
    match text.strip_prefix("0x") {
        Some(h) => hex::decode(h).context("attestation document hex"),
        None => Ok(decode_document_input(text.as_bytes()).map_err(|e| anyhow!("attestation document: {e}"))?.0),
    }
}

/// Attest the host's enclave: a fresh document for a random nonce, verified against `exp`;
/// its `public_key` is the identity, which must also sign the host's status for a fresh
/// nonce. Returns the entry to store.
pub fn attest(host: &Host, exp: &Expectation, max_age: u64, note: Option<String>) -> Result<Entry> {
    let nonce = trust::fresh_nonce();
    let doc = fetch_attestation(host, nonce.as_slice())?;
    let v = exp.verify(&doc, max_age, Some(nonce.as_slice()), None).context("the attestation document is invalid")?;
    if v.debug {
        eprintln!(
            "warning: the enclave runs in debug mode (accepted: --allow-debug): its parent reads its console, and its \
             PCR0, 1 and 2 are zeros, which measure no code: development only"
        );
    }
    let pk = v.public_key.as_deref().ok_or_else(|| anyhow!("the attestation document carries no public_key"))?;
    let (public_key, address) = trust::identity_from_sec1(pk).context("the attested public_key")?;
    let url = trust::normalize_url(&host.base);
    let probe = trust::Trusted { url, public_key: public_key.clone(), address, source: trust::Source::Flag };
    let (st, n) = trust::fetch_status(host, None)?;
    trust::check_status(&st, n, &probe).context("the host's status does not answer for the attested identity")?;
    let root_sha256 = v.chain.last().map(|c| hex::encode(c.sha256)).unwrap_or_default();
    Ok(Entry {
        identity_public_key: format!("0x{}", hex::encode(&public_key)),
        identity_address: address,
        method: Method::Attested,
        established_at: now(),
        attestation: Some(Attested {
            root_sha256,
            root_pem: exp.root_pem.clone(),
            pcrs: exp.pcrs.iter().map(|(i, v)| (*i, hex::encode(v))).collect(),
            any_image: exp.any_image,
            allow_debug: exp.allow_debug,
            module_id: v.module_id.clone(),
            timestamp_ms: v.timestamp_ms,
        }),
        note,
    })
}

/// `bridle dev`: trust its own enclave. The mock NSM's measurements pin no image, so the
/// entry is `attested` against the mock root with any image accepted, and says so.
pub fn dev_setup(url: &str, root: &std::path::Path) -> Result<(PathBuf, Entry)> {
    let host = Host::new(url)?;
    let pem = std::fs::read_to_string(root).with_context(|| format!("cannot read {}", root.display()))?;
    let exp = Expectation { root_pem: Some(pem), pcrs: BTreeMap::new(), any_image: true, allow_debug: false };
    let note = format!(
        "bridle dev: mock NSM, root {}; mock measurements pin no image, any image accepted (development only)",
        root.display()
    );
    let entry = attest(&host, &exp, 300, Some(note))?;
    let urls = dev_urls(url);
    let (file, _) = trust::update(|f| {
        for u in &urls {
            f.hosts.insert(trust::normalize_url(u), entry.clone());
        }
        Ok(())
    })?;
    Ok((file, entry))
}

/// The URLs a local user may name `bridle dev`'s host by: its own, and for a loopback or
/// unspecified address the 127.0.0.1 and localhost forms too.
fn dev_urls(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((addr, port)) = rest.rsplit_once(':') {
            if ["127.0.0.1", "localhost", "0.0.0.0", "[::]", "[::1]"].contains(&addr) {
                for alias in ["127.0.0.1", "localhost"] {
                    let u = format!("{scheme}://{alias}:{port}");
                    if !out.contains(&u) {
                        out.push(u);
                    }
                }
            }
        }
    }
    out
}

pub fn run(c: TrustCmd) -> Result<i32> {
    match c {
        TrustCmd::Attest(a) => {
            let given = a.pcrs.iter().cloned();
            let pcrs = crate::verify_attestation::expected_pcrs(given, a.pcrs_file.as_deref(), a.any_image)
                .map_err(|e| anyhow!("{e}"))?;
            let root_pem = a.root.as_ref().map(read_root).transpose()?;
            let exp = Expectation { root_pem, pcrs, any_image: a.any_image, allow_debug: a.allow_debug };
            if a.any_image && !bridle_attestation::pins_image(&exp.pcrs) {
                eprintln!("warning: --any-image: the document then proves only that some enclave holds the key");
            }
            let host = Host::new(&a.host.host)?;
            let entry = attest(&host, &exp, a.max_age, None)?;
            let (file, old) = trust::store(&a.host.host, entry.clone())?;
            print_stored(&a.host.host, &entry, old.as_ref(), &file);
        }
        TrustCmd::Pin { host, identity_key } => {
            let (public_key, address) = trust::parse_identity_key(&identity_key)?;
            let entry = Entry {
                identity_public_key: format!("0x{}", hex::encode(&public_key)),
                identity_address: address,
                method: Method::Pinned,
                established_at: now(),
                attestation: None,
                note: None,
            };
            let (file, old) = trust::store(&host.host, entry.clone())?;
            print_stored(&host.host, &entry, old.as_ref(), &file);
            // Tell at once whether the host serves it (commands refuse otherwise).
            let probe = trust::Trusted {
                url: trust::normalize_url(&host.host),
                public_key,
                address,
                source: trust::Source::Flag,
            };
            match Host::new(&host.host).and_then(|h| trust::fetch_status(&h, None)) {
                Ok((st, n)) => match trust::check_status(&st, n, &probe) {
                    Ok(()) => println!("the host's enclave answers for it (signed status for a fresh nonce)"),
                    Err(e) => eprintln!("warning: {}", crate::client::printable(&format!("{e:#}"))),
                },
                Err(e) => {
                    eprintln!("note: the host could not be asked now: {}", crate::client::printable(&format!("{e:#}")))
                }
            }
        }
        TrustCmd::Show { host, public_key, allow_unverified, json } => {
            let (file, t) = trust::load()?;
            let hosts: BTreeMap<String, Entry> = match &host {
                Some(h) => {
                    let k = trust::normalize_url(h);
                    match t.hosts.get(&k) {
                        Some(e) => [(k, e.clone())].into(),
                        None => bail!("no trusted identity for {k} in {}", file.display()),
                    }
                }
                None => t.hosts.clone(),
            };
            if public_key {
                for (url, e) in &hosts {
                    // Client helpers take this key as one "from an attestation you verified":
                    // a key the host itself named must not pass as one (a review of
                    // 2026-12-05).
                    if e.method == Method::Tofu && !allow_unverified {
                        bail!(
                            "the identity of {url} was trusted on first use: the host's word, never verified. Verify it \
                             (`bridle trust attest --host {url} …`) or pin a key you verified (`bridle trust pin`); \
                             --allow-unverified prints it anyway"
                        );
                    }
                    eprintln!("bridle: the identity key of {url}, {}", e.describe());
                    println!("{}", e.identity_public_key);
                }
            } else if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({"file": file, "hosts": hosts}))?);
            } else {
                println!("trust file: {}", file.display());
                if hosts.is_empty() {
                    println!("no trusted enclave identities");
                }
                for (url, e) in &hosts {
                    println!("{url}");
                    println!("  enclave:      {}", e.identity_address);
                    println!("  identity key: {}", e.identity_public_key);
                    println!("  trusted:      {}", e.describe());
                    println!("  since:        {}", bridle_common::period::format_time(e.established_at));
                    if let Some(n) = &e.note {
                        println!("  note:         {n}");
                    }
                }
            }
        }
        TrustCmd::Forget { host } => {
            let key = trust::normalize_url(&host.host);
            let (file, old) = trust::update(|f| Ok(f.hosts.remove(&key)))?;
            match old {
                Some(e) => println!("forgot enclave {} for {key} ({})", e.identity_address, file.display()),
                None => {
                    eprintln!("no trusted identity for {key} in {}", file.display());
                    return Ok(1);
                }
            }
        }
    }
    Ok(0)
}

fn print_stored(url: &str, e: &Entry, old: Option<&Entry>, file: &std::path::Path) {
    println!("trusted: {} → enclave {}", trust::normalize_url(url), e.identity_address);
    println!("  identity key: {}", e.identity_public_key);
    println!("  trusted:      {}", e.describe());
    if let Some(o) = old.filter(|o| o.identity_address != e.identity_address) {
        println!("  replaces enclave {} ({})", o.identity_address, o.method.as_str());
    }
    println!("  stored in {}", file.display());
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_urls_cover_the_loopback_names() {
        assert_eq!(
            super::dev_urls("http://0.0.0.0:8547"),
            ["http://0.0.0.0:8547", "http://127.0.0.1:8547", "http://localhost:8547"]
        );
        assert_eq!(super::dev_urls("http://127.0.0.1:9"), ["http://127.0.0.1:9", "http://localhost:9"]);
        assert_eq!(super::dev_urls("http://10.0.0.2:9"), ["http://10.0.0.2:9"]);
    }
}
