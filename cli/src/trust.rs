//! The trust store: which enclave identity the owner and agent commands believe, per host.
//!
//! The host is untrusted: it can run an enclave of its own (or none) and answer anything.
//! What a command believes is an *enclave identity* — the identity key the enclave generated
//! at boot and signs bindings, receipts and audit heads with — established once per host URL
//! and remembered in a JSON file:
//!
//! * `attested`: from an attestation document verified against a root certificate (the AWS
//!   Nitro Root-G1, or a given one) and expected PCRs that pin the image (or explicitly any
//!   image: the development enclave's mock measurements pin nothing);
//! * `pinned`: a key the user gives (`bridle trust pin`), e.g. from `bridle verify attestation`;
//! * `tofu`: the identity the host reported when the user passed `--trust-on-first-use`.
//!
//! The file is `$BRIDLE_TRUST_FILE`, else `$XDG_CONFIG_HOME/bridle/trust.json`, else
//! `~/.config/bridle/trust.json`; written with mode 0600 (atomically, under a lock file), and
//! refused when others can write it. Every owner and agent command resolves the identity for
//! its `--host` ([`connect`]), asks the host for a status signed for a fresh nonce, and goes
//! on only when that status is signed by the trusted identity: an enclave restart (a new
//! identity, every session lost) or another enclave behind the host stops the command with a
//! message to re-attest.

use crate::client::Host;
use crate::util::now;
use alloy_primitives::{Address, B256};
use anyhow::{anyhow, bail, Context, Result};
use bridle_common::protocol::Status;
use bridle_common::receipt;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Environment variable naming the trust file.
pub const TRUST_FILE_ENV: &str = "BRIDLE_TRUST_FILE";
/// The `format` of a trust file.
pub const TRUST_FORMAT: &str = "bridle-trust/v1";

/// The trust file: one entry per host URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFile {
    pub format: String,
    #[serde(default)]
    pub hosts: BTreeMap<String, Entry>,
}

impl Default for TrustFile {
    fn default() -> Self {
        TrustFile { format: TRUST_FORMAT.to_string(), hosts: BTreeMap::new() }
    }
}

/// How an identity came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Pinned,
    Attested,
    Tofu,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pinned => "pinned",
            Method::Attested => "attested",
            Method::Tofu => "tofu",
        }
    }
}

/// The enclave identity trusted for one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// SEC1 (compressed), 0x-hex.
    pub identity_public_key: String,
    pub identity_address: Address,
    pub method: Method,
    /// When it was established, unix seconds.
    pub established_at: u64,
    /// For `attested`: what the document was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attested>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What an attested identity was verified against (kept to verify later documents, such as
/// the one that comes with each new session's binding, the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attested {
    /// SHA-256 of the root certificate (DER), hex.
    pub root_sha256: String,
    /// The root certificate (PEM); absent: the AWS Nitro Enclaves Root-G1 embedded in bridle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_pem: Option<String>,
    /// Expected PCRs, index → hex.
    #[serde(default)]
    pub pcrs: BTreeMap<u16, String>,
    /// Any image was accepted (no PCR0, or PCR1 and PCR2, expected): development only.
    #[serde(default)]
    pub any_image: bool,
    #[serde(default)]
    pub allow_debug: bool,
    /// The verified document's module id and timestamp (ms).
    pub module_id: String,
    pub timestamp_ms: u64,
}

impl Entry {
    /// Short: the method and what it rests on.
    pub fn describe(&self) -> String {
        match (&self.method, &self.attestation) {
            (Method::Attested, Some(a)) => {
                let root = if a.root_pem.is_some() {
                    format!("root {}…", &a.root_sha256[..a.root_sha256.len().min(16)])
                } else {
                    "the AWS Nitro Root-G1".to_string()
                };
                // An expected PCR of zeros (a debug-mode enclave's) pins nothing.
                let expected = a
                    .pcrs
                    .iter()
                    .map(|(k, v)| (*k, hex::decode(v.trim_start_matches("0x")).unwrap_or_default()))
                    .collect();
                let image = if !bridle_attestation::pins_image(&expected) {
                    "any image (development only)".to_string()
                } else {
                    let list: Vec<String> = a.pcrs.keys().map(|i| format!("PCR{i}")).collect();
                    format!("expected {}", list.join(", "))
                };
                let debug = if a.allow_debug {
                    ", debug-mode enclaves accepted (their parent reads their console; development only)"
                } else {
                    ""
                };
                format!("attested against {root}, {image}{debug}")
            }
            (Method::Attested, None) => "attested".to_string(),
            (Method::Pinned, _) => "pinned".to_string(),
            (Method::Tofu, _) => "trusted on first use: the host's word, never verified".to_string(),
        }
    }
}

/// The trust file's path.
pub fn path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(TRUST_FILE_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(x.join("bridle/trust.json"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".config/bridle/trust.json")),
        None => bail!("cannot place the trust file: set {TRUST_FILE_ENV}, XDG_CONFIG_HOME or HOME"),
    }
}

/// The key of a host in the trust file: scheme and authority lowercased, no trailing `/`.
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

/// Read the trust file (an absent file is empty).
pub fn load_from(p: &Path) -> Result<TrustFile> {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TrustFile::default()),
        Err(e) => return Err(anyhow!("cannot read the trust file {}: {e}", p.display())),
    };
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(p)?;
        // Another user's file (a shared directory, a link into one) is refused whatever its
        // mode: its owner chooses which enclave you believe (a review of 2026-12-05).
        if let Some(me) = effective_uid() {
            if meta.uid() != me {
                bail!(
                    "the trust file {} belongs to uid {}, not to you (uid {me}): whoever owns it chooses which \
                     enclave you believe",
                    p.display(),
                    meta.uid()
                );
            }
        }
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            bail!(
                "the trust file {} is writable by others (mode {:o}): anyone who can write it chooses which enclave \
                 you believe; fix it with `chmod 600 {}`",
                p.display(),
                mode & 0o777,
                p.display()
            );
        }
    }
    let f: TrustFile =
        serde_json::from_str(&text).with_context(|| format!("the trust file {} is not valid", p.display()))?;
    if f.format != TRUST_FORMAT {
        bail!("the trust file {} has format {:?}, expected {TRUST_FORMAT:?}", p.display(), f.format);
    }
    Ok(f)
}

/// This process's effective uid, from `/proc/self/status` (`None` where there is none).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The trust file and its path.
pub fn load() -> Result<(PathBuf, TrustFile)> {
    let p = path()?;
    let f = load_from(&p)?;
    Ok((p, f))
}

/// A lock file next to the trust file, held while it is read, changed and replaced.
struct Lock(PathBuf);

impl Lock {
    fn take(file: &Path) -> Result<Lock> {
        let mut lock = file.as_os_str().to_owned();
        lock.push(".lock");
        let lock = PathBuf::from(lock);
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
                Ok(_) => return Ok(Lock(lock)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock left by a process that died: older than any update takes.
                    let stale = std::fs::metadata(&lock)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(30));
                    if stale {
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    if start.elapsed() > Duration::from_secs(10) {
                        bail!("the trust file is locked by another bridle ({} exists)", lock.display());
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err(e) => return Err(anyhow!("cannot lock the trust file ({}): {e}", lock.display())),
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Change the trust file: read it under its lock, apply `f`, write it back atomically (0600).
pub fn update<T>(f: impl FnOnce(&mut TrustFile) -> Result<T>) -> Result<(PathBuf, T)> {
    let p = path()?;
    if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            let mut b = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.recursive(true).create(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let _lock = Lock::take(&p)?;
    let mut file = load_from(&p)?;
    let out = f(&mut file)?;
    let mut tmp = p.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        w.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        w.write_all(b"\n")?;
        w.sync_all()?;
    }
    std::fs::rename(&tmp, &p).with_context(|| format!("cannot replace {}", p.display()))?;
    Ok((p, out))
}

/// Store `entry` for `url`; returns the file and the entry it replaced.
pub fn store(url: &str, entry: Entry) -> Result<(PathBuf, Option<Entry>)> {
    let key = normalize_url(url);
    update(|f| Ok(f.hosts.insert(key, entry)))
}

/// A secp256k1 public key from hex (SEC1, compressed or not): the compressed bytes and the
/// address.
pub fn parse_identity_key(hex_key: &str) -> Result<(Vec<u8>, Address)> {
    let s = hex_key.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let b = hex::decode(s).map_err(|e| anyhow!("the identity key is not hex: {e}"))?;
    identity_from_sec1(&b)
}

/// The compressed form and address of a SEC1 secp256k1 public key.
pub fn identity_from_sec1(b: &[u8]) -> Result<(Vec<u8>, Address)> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let pk = k256::PublicKey::from_sec1_bytes(b)
        .map_err(|_| anyhow!("{} is not a secp256k1 SEC1 public key", hex::encode(b)))?;
    let address = Address::from_public_key(&k256::ecdsa::VerifyingKey::from(&pk));
    Ok((pk.to_encoded_point(true).as_bytes().to_vec(), address))
}

/// Options every owner and agent command takes.
#[derive(Args, Clone, Debug, Default)]
pub struct TrustOpts {
    /// Trust this enclave identity public key (hex SEC1) for this call, instead of the trust
    /// store's entry for the host.
    #[arg(long, value_name = "HEX")]
    pub identity_key: Option<String>,
    /// With no trusted identity for this host: accept the identity the host reports (not
    /// verified: the host's word) and remember it as trusted on first use.
    #[arg(long)]
    pub trust_on_first_use: bool,
}

/// Where the trusted identity of a call comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The trust store's entry for the host.
    Store(Entry),
    /// `--identity-key` for this call.
    Flag,
    /// Just accepted with `--trust-on-first-use` (now stored as `tofu`).
    FirstUse,
}

/// The enclave identity a command believes.
#[derive(Debug, Clone)]
pub struct Trusted {
    pub url: String,
    /// SEC1 compressed.
    pub public_key: Vec<u8>,
    pub address: Address,
    pub source: Source,
}

impl Trusted {
    /// For stamp keys.
    pub fn verifying_key(&self) -> Result<k256::PublicKey> {
        k256::PublicKey::from_sec1_bytes(&self.public_key).map_err(|_| anyhow!("trusted identity key is not SEC1"))
    }

    /// How the identity is trusted, for messages.
    pub fn label(&self) -> String {
        match &self.source {
            Source::Store(e) => e.describe(),
            Source::Flag => "given with --identity-key".to_string(),
            Source::FirstUse => "trusted on first use: the host's word, never verified".to_string(),
        }
    }

    pub fn entry(&self) -> Option<&Entry> {
        match &self.source {
            Source::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// A host whose enclave answered for the trusted identity, and its signed status.
pub struct Enclave {
    pub host: Host,
    pub trusted: Trusted,
    /// A status the trusted identity signed for a fresh nonce of ours.
    pub status: Status,
}

/// How far behind the time of the enclave's signed status this clock may be and still sign
/// with its own time: the enclave refuses only a nonce more than ten minutes behind its clock.
const BEHIND_SLACK_MS: u64 = 5 * 60_000;

/// The owner nonce at `now` (this clock, ms) for an enclave whose status was signed at
/// `signed_ms`, at least `floor_ms` ([`Enclave::owner_nonce`]). A clock up to
/// [`BEHIND_SLACK_MS`] behind signs with its own time; one further behind is moved forward
/// by whole minutes, enough to be within the slack. The first version lifted any clock behind
/// the signed second to that second plus its own milliseconds, so two commands in one of the
/// enclave's seconds could go backwards (the VM test's revocation after its grant was refused
/// `replayed`, its clock 0.4 s behind the guest's): moving by whole minutes keeps this
/// clock's order while the lag holds.
fn nonce_at(now: u64, signed_ms: u64, floor_ms: u64) -> u64 {
    let slack_floor = signed_ms.saturating_sub(BEHIND_SLACK_MS);
    let now = if now >= slack_floor { now } else { now.saturating_add((slack_floor - now).div_ceil(60_000) * 60_000) };
    at_least(now, floor_ms)
}

/// The time in milliseconds `now`, or — when it is below `floor` — the floor plus `now`'s
/// milliseconds (a suspension's next second, a hold's second: one command).
fn at_least(now: u64, floor: u64) -> u64 {
    if now >= floor {
        now
    } else {
        floor.saturating_add(now % 1000)
    }
}

/// A fresh random 32-byte nonce.
pub fn fresh_nonce() -> B256 {
    let mut n = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut n);
    B256::from(n)
}

fn no_trust(url: &str) -> anyhow::Error {
    let url = &crate::client::without_userinfo(url);
    let file = path().map(|p| p.display().to_string()).unwrap_or_else(|e| e.to_string());
    anyhow!(
        "no trusted enclave identity for {url} (trust file {file}). Establish it once: \
         `bridle trust attest --host {url} --pcrs pcrs.json` (the release's measurements; for a development \
         enclave `--root <dev dir>/mock-root.pem --any-image`, which `bridle dev` does by itself), or \
         `bridle trust pin --host {url} --identity-key 0x…` with a key you verified; or pass --identity-key for \
         this call, or --trust-on-first-use to accept the identity the host reports (not verified)"
    )
}

/// Ask the host for a status signed for a fresh nonce (one session's facts too, when
/// `session` is given). Nothing is checked here; the nonce returned is the one the
/// enclave's receipt must carry: the fresh nonce bound to the session asked about
/// (`receipt::status_nonce`), so a status of another session, or "no such session" for
/// another address, does not verify.
pub fn fetch_status(host: &Host, session: Option<Address>) -> Result<(Status, B256)> {
    fetch_status_showing(host, session, None)
}

/// [`fetch_status`], asking the session's status to show the payload of the request held
/// under `held` whatever its size (a status shows the others' only while they fit
/// together: `payload_omitted`).
pub fn fetch_status_showing(host: &Host, session: Option<Address>, held: Option<B256>) -> Result<(Status, B256)> {
    let nonce = fresh_nonce();
    let path = match (session, held) {
        (Some(s), Some(d)) => format!("/v1/status?session={s}&nonce={nonce}&held={d}"),
        (Some(s), None) => format!("/v1/status?session={s}&nonce={nonce}"),
        (None, _) => format!("/v1/status?nonce={nonce}"),
    };
    let st: Status = host.get(&path)?;
    if let (Some(asked), Some(ss)) = (session, &st.session) {
        if ss.session != asked {
            bail!("the host answered a question about session {asked} with the status of session {}", ss.session);
        }
    }
    Ok((st, receipt::status_nonce(nonce, session)))
}

/// Check that `st` answers `nonce` and is signed by `trusted`.
pub fn check_status(st: &Status, nonce: B256, trusted: &Trusted) -> Result<()> {
    if st.identity_address != trusted.address {
        let since = trusted.entry().map(|e| format!(" since {}", bridle_common::period::format_time(e.established_at)));
        // Shown without a user name or password: this text reaches terminals, logs and, through
        // the MCP server, a model (a review of 2026-12-06).
        let url = crate::client::without_userinfo(&trusted.url);
        bail!(
            "the host {} now reports enclave identity {}, but the identity trusted for it is {} ({}{}): the enclave \
             restarted (a restart makes a new identity, and every session of the old one is lost) or the host does \
             not serve the enclave you trust. Verify the new enclave and re-attest: `bridle trust attest --host {} …` \
             (nothing was sent)",
            url,
            st.identity_address,
            trusted.address,
            trusted.label(),
            since.unwrap_or_default(),
            url
        );
    }
    receipt::verify(st, trusted.address, Some(nonce))
        .map_err(|e| anyhow!("the host's status is not the trusted enclave's word: {e} (nothing was sent)"))?;
    Ok(())
}

/// The identity to believe for `url`, before asking the host anything.
pub enum Resolved {
    Trusted(Box<Trusted>),
    /// None yet, and `--trust-on-first-use` was given.
    FirstUse,
    /// None: why, and how to establish one.
    Untrusted(anyhow::Error),
}

/// Resolve the identity trusted for `url`: `--identity-key`, else the trust store.
pub fn resolve(url: &str, opts: &TrustOpts) -> Result<Resolved> {
    let key = normalize_url(url);
    if let Some(k) = &opts.identity_key {
        let (public_key, address) = parse_identity_key(k).context("--identity-key")?;
        return Ok(Resolved::Trusted(Box::new(Trusted { url: key, public_key, address, source: Source::Flag })));
    }
    let (_, file) = load()?;
    Ok(match file.hosts.get(&key) {
        Some(e) => {
            let (public_key, address) = parse_identity_key(&e.identity_public_key)
                .with_context(|| format!("the trust file's key for {key}"))?;
            if address != e.identity_address {
                bail!(
                    "the trust file's entry for {key} is inconsistent: its key is address {address}, not {}",
                    e.identity_address
                );
            }
            Resolved::Trusted(Box::new(Trusted { url: key, public_key, address, source: Source::Store(e.clone()) }))
        }
        None if opts.trust_on_first_use => Resolved::FirstUse,
        None => Resolved::Untrusted(no_trust(&key)),
    })
}

/// Check `st` (fetched for `nonce`) against what `r` resolved: the trusted identity (or,
/// on first use, the one the host reports, now remembered).
pub fn judge(url: &str, r: Resolved, st: &Status, nonce: B256) -> Result<Trusted> {
    match r {
        Resolved::Trusted(t) => {
            check_status(st, nonce, &t)?;
            Ok(*t)
        }
        Resolved::FirstUse => first_use(&normalize_url(url), st, nonce),
        Resolved::Untrusted(e) => Err(e),
    }
}

/// Resolve the identity trusted for `url` and check that the host's enclave answers for it
/// with a status signed for a fresh nonce (with `session`'s facts when given).
pub fn connect(url: &str, opts: &TrustOpts, session: Option<Address>) -> Result<Enclave> {
    let host = Host::new(url)?;
    let r = resolve(url, opts)?;
    if let Resolved::Untrusted(e) = r {
        return Err(e);
    }
    let (status, nonce) = fetch_status(&host, session)?;
    let trusted = judge(url, r, &status, nonce)?;
    Ok(Enclave { host, trusted, status })
}

impl Enclave {
    /// A new status signed for a fresh nonce (one session's facts too).
    pub fn refresh(&self, session: Option<Address>) -> Result<Status> {
        self.refresh_showing(session, None)
    }

    /// [`Self::refresh`], the session's status showing the payload held under `held`.
    pub fn refresh_showing(&self, session: Option<Address>, held: Option<B256>) -> Result<Status> {
        let (st, nonce) = fetch_status_showing(&self.host, session, held)?;
        check_status(&st, nonce, &self.trusted)?;
        Ok(st)
    }

    /// An owner nonce for a message to this enclave: the one given, else the time in
    /// milliseconds — but at least `floor_ms` and the time the enclave signed its status at
    /// (a review of 2026-12-06). The enclave refuses a nonce more than ten minutes behind its
    /// clock, an update signed before a suspension and a word on a hold signed before it: an
    /// owner whose clock runs behind the enclave's would otherwise sign such messages, even
    /// an emergency revocation. Below the floor, the floor plus this clock's milliseconds (two
    /// commands in one second then differ). The floors come from a status the enclave signed
    /// for a fresh nonce of ours, at most its clock: within the ten minutes ahead it accepts.
    pub fn owner_nonce(&self, given: Option<u64>, floor_ms: u64) -> u64 {
        given.unwrap_or_else(|| {
            let signed = self.status.receipt.as_ref().map_or(0, |r| r.time.saturating_mul(1000));
            nonce_at(crate::util::default_nonce(None), signed, floor_ms)
        })
    }

    /// When the current status was signed, and by whom, for messages.
    pub fn signed_line(&self) -> String {
        signed_line(&self.status, &self.trusted)
    }
}

/// `signed by the enclave 0x… at <time> (…)`.
pub fn signed_line(st: &Status, t: &Trusted) -> String {
    let at = st.receipt.as_ref().map_or(st.now, |r| r.time);
    format!(
        "signed by the enclave {} at {} for a fresh nonce of this command (identity {})",
        t.address,
        bridle_common::period::format_time(at),
        t.label()
    )
}

/// `--trust-on-first-use`: accept the identity the host reports, remember it, say so.
fn first_use(url: &str, st: &Status, nonce: B256) -> Result<Trusted> {
    let (public_key, address) = identity_from_sec1(&st.identity_public_key).context("the host's identity key")?;
    if address != st.identity_address {
        bail!("the host reports identity key {address} as address {}: inconsistent", st.identity_address);
    }
    receipt::verify(st, address, Some(nonce))
        .map_err(|e| anyhow!("the host's status is not signed by the identity it names: {e}"))?;
    let entry = Entry {
        identity_public_key: format!("0x{}", hex::encode(&public_key)),
        identity_address: address,
        method: Method::Tofu,
        established_at: now(),
        attestation: None,
        note: None,
    };
    let (file, _) = store(url, entry.clone())?;
    let shown = crate::client::without_userinfo(url);
    eprintln!(
        "warning: --trust-on-first-use: trusting enclave identity {address} for {shown} on the host's word, without \
         any attestation; stored in {} as `tofu`. Anyone in control of that host now could have chosen it: verify it \
         with `bridle trust attest --host {shown} …` before relying on it",
        file.display()
    );
    Ok(Trusted { url: url.to_string(), public_key, address, source: Source::FirstUse })
}

#[cfg(test)]
#[path = "trust_tests.rs"]
mod tests;
