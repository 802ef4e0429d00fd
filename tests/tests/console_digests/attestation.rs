//! Attestation documents in the console's code (host/console/attest.js, x509.js) under node:
//! a `bridle dev` enclave's, the real AWS documents of tests/fixtures/nitro at their own
//! time, and mock NSM documents (tests/fixtures/attestation/mock_documents.json, written by
//! attestation/tests/console_fixture.rs, which checks bridle-attestation's verdict on each)
//! that must get the same verdict here; the console's CBOR reader against ciborium, and its
//! pcrs.json reader.

use super::node;
use bridle_tests::Dev;
use serde_json::{json, Value};

const SAMPLE_2024: &[u8] = include_bytes!("../../fixtures/nitro/nitro_sample_2024.cbor");
const DEBUG_2022: &[u8] = include_bytes!("../../fixtures/nitro/nitro_debug_2022.cbor");
const SAMPLE_TS_MS: u64 = 1_708_930_921_439;
const DEBUG_TS_MS: u64 = 1_665_582_606_081;
const SAMPLE_PCRS: [&str; 3] = [
    "17bf8f048519797be90497001a7559a3d555395937117d76f8baaedf56ca6d97952de79479bc0c76e5d176d20f663790",
    "5d3938eb05288e20a981038b1861062ff4174884968a39aee5982b312894e60561883576cc7381d1a7d05b809936bd16",
    "249037310daa90f4eb0703e7b105a241fdb09f12d3c40b7aea2f39e57b07b887e6ff4e4f9757943e127e391626b5e4d5",
];
const SAMPLE_PUBLIC_KEY: &str = "d239fd059dd0e0a01e280bec44903bb8143bae7e578b9844c6df5fd6351eddc0";
const MOCK_DOCUMENTS: &str = include_str!("../../fixtures/attestation/mock_documents.json");

fn case(document: &[u8], opts: Value) -> Value {
    json!({"op": "attest", "document": format!("0x{}", hex::encode(document)), "opts": opts})
}

#[track_caller]
fn refused(r: &Value, what: &str) {
    assert_eq!(r["ok"], false, "must be refused ({what}): {r}");
    let e = r["error"].as_str().unwrap();
    assert!(e.contains(what), "expected {what:?} in {e:?}");
}

/// Attestation documents of a real development enclave, verified by the console's code
/// against its mock root — and refused for every expectation that does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attestation_documents_of_bridle_dev_verify_in_the_console_code() {
    let dev = Dev::start();
    let root = std::fs::read_to_string(dev.dir.path().join("dev/mock-root.pem")).unwrap();
    let http = reqwest::Client::new();
    let status: Value = http.get(format!("{}/v1/status", dev.url)).send().await.unwrap().json().await.unwrap();
    let pk = status["identity_public_key"].as_str().unwrap().to_string();
    let nonce = format!("0x{}", hex::encode([0x42u8; 32]));
    let att: Value =
        http.get(format!("{}/v1/attestation?nonce={nonce}", dev.url)).send().await.unwrap().json().await.unwrap();
    let doc = hex::decode(&att["document"].as_str().unwrap()[2..]).unwrap();
    let pcr0 = att["summary"]["pcrs"]["0"].as_str().unwrap().to_string();
    let mut altered = doc.clone();
    let at = altered.len() - 120; // inside the payload's last fields or the signature
    altered[at] ^= 1;
    let other_nonce = format!("0x{}", hex::encode([0x43u8; 32]));
    let cases = vec![
        case(&doc, json!({"root_pem": root, "any_image": true, "nonce": nonce, "public_key": pk})),
        case(&doc, json!({"root_pem": root, "pcrs": {"0": pcr0}, "nonce": nonce})),
        case(&doc, json!({"any_image": true})),
        case(&doc, json!({"root_pem": root})),
        case(&doc, json!({"root_pem": root, "any_image": true, "nonce": other_nonce})),
        case(&doc, json!({"root_pem": root, "pcrs": {"0": format!("{:0>96}", "1")}})),
        case(&altered, json!({"root_pem": root, "any_image": true})),
        case(&doc, json!({"root_pem": root, "any_image": true, "public_key": format!("0x02{}", "11".repeat(32))})),
    ];
    let r = node(&cases);
    assert_eq!(r[0]["ok"], true, "{}", r[0]);
    assert_eq!(r[0]["public_key"].as_str().unwrap(), pk.to_lowercase());
    assert_eq!(r[1]["ok"], true, "pinned PCR0: {}", r[1]);
    refused(&r[2], "trusted root");
    refused(&r[3], "no expected image");
    refused(&r[4], "nonce mismatch");
    refused(&r[5], "PCR0 mismatch");
    assert_eq!(r[6]["ok"], false, "an altered document: {}", r[6]);
    refused(&r[7], "public_key mismatch");
}

/// The real AWS documents (tests/fixtures/nitro/README.md): the 2024 sample verifies with
/// the embedded AWS root at its own time and nowhere else; the 2022 debug-mode document is
/// refused as debug unless debug is allowed, and all-zero PCRs pin no image.
#[test]
fn real_nitro_documents_verify_in_the_console_at_their_time() {
    let pcrs = json!({"0": SAMPLE_PCRS[0], "1": SAMPLE_PCRS[1], "2": SAMPLE_PCRS[2]});
    let zero = "00".repeat(48);
    let at = |ms: u64| json!({"pcrs": pcrs, "now_ms": ms, "public_key": SAMPLE_PUBLIC_KEY});
    let debug = |extra: Value| {
        let mut o = json!({"now_ms": DEBUG_TS_MS});
        o.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        case(DEBUG_2022, o)
    };
    let r = node(&[
        case(SAMPLE_2024, at(SAMPLE_TS_MS)),
        case(SAMPLE_2024, at(SAMPLE_TS_MS + 3 * 3600 * 1000)),
        case(SAMPLE_2024, json!({"pcrs": pcrs})),
        case(SAMPLE_2024, at(SAMPLE_TS_MS + 301_000)),
        case(SAMPLE_2024, json!({"pcrs": {"0": SAMPLE_PCRS[1]}, "now_ms": SAMPLE_TS_MS})),
        debug(json!({"any_image": true})),
        debug(json!({"any_image": true, "allow_debug": true})),
        debug(json!({"pcrs": {"0": zero}, "allow_debug": true})),
        debug(json!({"pcrs": {"1": zero, "2": zero}, "allow_debug": true})),
        debug(json!({"pcrs": {"0": zero, "1": zero, "2": zero}, "any_image": true, "allow_debug": true})),
    ]);
    assert_eq!(r[0]["ok"], true, "the 2024 sample at its timestamp: {}", r[0]);
    assert!(r[0]["module_id"].as_str().unwrap().starts_with("i-0df237f0418feb41e-enc"));
    assert_eq!(r[0]["timestamp_ms"], SAMPLE_TS_MS);
    assert_eq!(r[0]["pcr0"], format!("0x{}", SAMPLE_PCRS[0]));
    assert_eq!(r[0]["public_key"], format!("0x{SAMPLE_PUBLIC_KEY}"));
    assert_eq!(r[0]["nonce"], Value::Null);
    assert_eq!(r[0]["chain"], 5, "leaf, cabundle[3..1], the AWS root");
    assert_eq!(r[0]["root_sha256"], "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b");
    refused(&r[1], "expired");
    refused(&r[2], "expired");
    refused(&r[3], "from now");
    refused(&r[4], "PCR0 mismatch");
    refused(&r[5], "debug-mode enclave (PCR0 is all zeros)");
    assert_eq!(r[6]["ok"], true, "signature and chain valid, debug allowed: {}", r[6]);
    assert_eq!(r[6]["pcr0"], format!("0x{zero}"));
    refused(&r[7], "no expected image");
    refused(&r[8], "no expected image");
    assert_eq!(r[9]["ok"], true, "zeros expected beside any image, debug allowed: {}", r[9]);
}

/// Mock NSM documents get bridle-attestation's verdict (recorded in the fixture and checked
/// there by attestation/tests/console_fixture.rs): an indefinite-length payload map (the
/// mock's PayloadEncoding::Indefinite) and one with every item of indefinite length verify;
/// a leaf that is a CA or may not sign, a `crit` protected header and an empty cabundle
/// are refused.
#[test]
fn mock_documents_get_the_verdict_of_bridle_attestation() {
    let fixture: Value = serde_json::from_str(MOCK_DOCUMENTS).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let opts = |c: &Value| {
        json!({
            "root_pem": fixture["root_pem"],
            "pcrs": {"0": fixture["pcr0"]},
            "nonce": fixture["nonce"],
            "now_ms": c["timestamp_ms"],
        })
    };
    let doc = |c: &Value| hex::decode(c["document"].as_str().unwrap()).unwrap();
    let mut inputs: Vec<Value> = cases.iter().map(|c| case(&doc(c), opts(c))).collect();
    // An indefinite-length payload with a byte changed near its end, and the same document
    // verified an hour later (a stored document is checked at its time, a fresh one now).
    let indefinite = cases.iter().find(|c| c["name"] == "indefinite_everything").unwrap();
    let mut altered = doc(indefinite);
    let n = altered.len();
    altered[n - 130] ^= 1;
    inputs.push(case(&altered, opts(indefinite)));
    let mut later = opts(indefinite);
    later["now_ms"] = json!(indefinite["timestamp_ms"].as_u64().unwrap() + 3_600_000);
    inputs.push(case(&doc(indefinite), later));
    let r = node(&inputs);
    let why = |name: &str| match name {
        "leaf_is_ca" => "is a certificate authority",
        "leaf_key_cert_sign_only" => "keyUsage does not allow digitalSignature",
        "crit_in_protected_header" => "critical header parameters (crit) are not supported",
        "empty_cabundle" => "cabundle: empty",
        other => panic!("no refusal expected for {other}"),
    };
    let definite = &r[0];
    assert_eq!(cases[0]["name"], "definite");
    for (c, r) in cases.iter().zip(&r) {
        let name = c["name"].as_str().unwrap();
        if c["rust"] == "ok" {
            assert_eq!(r["ok"], true, "{name}: bridle-attestation verifies it, the console must: {r}");
            for field in ["module_id", "nonce", "pcrs", "public_key", "chain"] {
                assert_eq!(r[field], definite[field], "{name}: {field}");
            }
            assert_eq!(r["nonce"], format!("0x{}", fixture["nonce"].as_str().unwrap()));
            assert_eq!(r["pcr0"], format!("0x{}", fixture["pcr0"].as_str().unwrap()));
        } else {
            refused(r, why(name));
        }
    }
    assert_eq!(r[cases.len()]["ok"], false, "an altered indefinite-length document: {}", r[cases.len()]);
    refused(&r[cases.len() + 1], "from now");
}

/// ciborium's value in the form digests.mjs writes the console's.
fn show(v: &ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Integer(i) => json!({"int": i128::from(*i).to_string()}),
        C::Bytes(b) => json!({"bytes": hex::encode(b)}),
        C::Text(t) => json!({"text": t}),
        C::Bool(b) => json!(b),
        C::Null => Value::Null,
        C::Array(a) => json!({"array": a.iter().map(show).collect::<Vec<_>>()}),
        C::Map(m) => json!({"map": m.iter().map(|(k, v)| json!([show(k), show(v)])).collect::<Vec<_>>()}),
        C::Tag(t, v) => json!({"tag": t.to_string(), "value": show(v)}),
        other => panic!("not in these tests: {other:?}"),
    }
}

fn ciborium_reads(bytes: &[u8]) -> Option<ciborium::Value> {
    let mut reader = bytes;
    let v: ciborium::Value = ciborium::de::from_reader(&mut reader).ok()?;
    reader.is_empty().then_some(v)
}

/// The console reads items of indefinite length (RFC 8949 §3.2) as ciborium (the Rust
/// verifier's reader) does, and refuses malformed ones with a clear error, within its depth
/// limit, whatever the input.
#[test]
fn cbor_of_indefinite_length_is_read_as_ciborium_reads_it() {
    let nested = |n: usize, open: &str, close: &str| format!("{}{}", open.repeat(n), close.repeat(n));
    let well_formed = [
        "bf6161016162820102ff".to_string(), // {_ "a": 1, "b": [1, 2]}
        "5f4101420203ff".into(),            // (_ h'01', h'0203')
        "5fff".into(),
        "7f616161626163ff".into(), // (_ "a", "b", "c")
        "7fff".into(),
        "7f62c3a9ff".into(), // (_ "é")
        "9f01029f03ffff".into(),
        "9fff".into(),
        "bfff".into(),
        "bf01bf0203ffff".into(),
        "a2019fff025f40ff".into(), // {1: [_ ], 2: (_ h'')}
        "9fa10102ff".into(),
        "d29f01ff".into(), // 18([_ 1])
        format!("5f{}ff", "40".repeat(30_000)),
        nested(17, "9f", "ff"),                                // 17 levels: the most
        format!("{}00{}", "bf01".repeat(16), "ff".repeat(16)), // {_ 1: {_ 1: … 0}}
    ];
    let malformed: [(String, &str); 24] = [
        ("ff".into(), "break outside an indefinite-length item"),
        ("9f01".into(), "truncated"),
        ("bf".into(), "truncated"),
        ("5f4101".into(), "truncated"),
        ("5f41".into(), "truncated"),
        ("bf01".into(), "truncated"),
        ("5f01ff".into(), "chunk of an indefinite-length string is an unsigned integer, not a byte string"),
        ("5f6161ff".into(), "is a text string, not a byte string"),
        ("7f4101ff".into(), "is a byte string, not a text string"),
        ("5f5f4101ffff".into(), "itself of indefinite length"),
        ("7f7f6161ffff".into(), "itself of indefinite length"),
        ("bf6161ff".into(), "map key a has no value"),
        ("1f".into(), "an unsigned integer cannot be of indefinite length"),
        ("3f".into(), "a negative integer cannot be of indefinite length"),
        ("df01".into(), "a tag cannot be of indefinite length"),
        ("7f61c361a9ff".into(), "not UTF-8"), // "é" split across two chunks
        ("5c".into(), "reserved additional info 28"),
        ("5f5dff".into(), "reserved additional info 29"),
        ("9f01ff00".into(), "1 trailing bytes"),
        ("bf616101616102ff".into(), "duplicate map key a"),
        (nested(18, "9f", "ff"), "nested too deep"),
        (nested(30_000, "9f", "ff"), "nested too deep"),
        // Keys that are neither integers nor text, which attestation/src does not read as
        // a document's (a review of 2026-12-06: `["digest"]` was read as "digest").
        ("a1816664696765737466534841333834".into(), "neither an integer nor text"),
        ("a1c16161 01".replace(' ', ""), "neither an integer nor text"),
    ];
    let mut cases: Vec<Value> = well_formed.iter().map(|h| json!({"op": "cbor", "hex": h})).collect();
    cases.extend(malformed.iter().map(|(h, _)| json!({"op": "cbor", "hex": h})));
    let r = node(&cases);
    for (h, r) in well_formed.iter().zip(&r) {
        let bytes = hex::decode(h).unwrap();
        let expected = ciborium_reads(&bytes).unwrap_or_else(|| panic!("ciborium reads {h:.40}"));
        assert_eq!(r["ok"], true, "{h:.40}: {r}");
        assert_eq!(r["value"], show(&expected), "{h:.40}");
    }
    for ((h, why), r) in malformed.iter().zip(&r[well_formed.len()..]) {
        assert_eq!(r["ok"], false, "{h:.40} must be refused: {r}");
        assert_eq!(r["kind"], "Error", "{h:.40}: a clear error, not a {}: {r}", r["kind"]);
        let e = r["error"].as_str().unwrap();
        assert!(e.contains(why), "{h:.40}: expected {why:?} in {e:?}");
        // ciborium refuses them too, but for 18 levels (its own limit is deeper), a
        // duplicate key (a map is a list of pairs to it; the verifier refuses a duplicate
        // field itself) and — against RFC 8949 §3.2.3 — a chunk that is itself of
        // indefinite length, which the console refuses as the RFC says.
        let lenient = [
            nested(18, "9f", "ff"),
            "bf616101616102ff".into(),
            "5f5f4101ffff".into(),
            "7f7f6161ffff".into(),
            "a1816664696765737466534841333834".into(),
            "a1c1616101".into(),
        ];
        assert_eq!(ciborium_reads(&hex::decode(h).unwrap()).is_some(), lenient.contains(h), "ciborium on {h:.40}");
    }
}

/// Mutated documents (real and mock, definite and indefinite; bytes changed, cut, inserted)
/// are refused with the console's own errors: nothing else is thrown.
#[test]
fn mutated_documents_are_refused_not_crashed_on() {
    let fixture: Value = serde_json::from_str(MOCK_DOCUMENTS).unwrap();
    let mut documents = vec![hex::encode(SAMPLE_2024), hex::encode(DEBUG_2022)];
    documents.extend(fixture["cases"].as_array().unwrap().iter().map(|c| c["document"].as_str().unwrap().to_string()));
    let now_ms = fixture["cases"][0]["timestamp_ms"].clone();
    let r = node(&[json!({
        "op": "attest_mutations", "documents": documents, "rounds": 1500, "seed": 20261206,
        "root_pem": fixture["root_pem"], "now_ms": now_ms,
    })]);
    assert_eq!(r[0]["failures"], json!({}), "thrown other than as a refusal");
}

/// A document over 64 KiB is refused before it is read, however its items are encoded.
#[test]
fn a_document_over_64_kib_is_refused() {
    let mut big = vec![0x5f];
    big.extend(std::iter::repeat_n(0x40, 64 * 1024));
    big.push(0xff);
    let r = node(&[case(&big, json!({"any_image": true}))]);
    refused(&r[0], "document too large");
}

/// pcrs.json as bridle-attestation reads it (attestation/src/pcrs.rs): PCR keys in any
/// case, an index given twice refused, nothing given skipped.
#[test]
fn pcrs_json_is_read_as_bridle_attestation_reads_it() {
    let h = |b: u8| hex::encode([b; 48]);
    /// Expected: the PCRs read (index, byte repeated), or what the error says.
    type Expected = Result<Vec<(&'static str, u8)>, &'static str>;
    let cases: Vec<(String, Expected)> = vec![
        (format!(r#"{{"PCR0":"{}","pCR2":"{}","kernel":"x"}}"#, h(0), h(2)), Ok(vec![("0", 0), ("2", 2)])),
        (format!(r#"{{"Pcr16":"{}"}}"#, h(16)), Ok(vec![("16", 16)])),
        (format!(r#"{{"Measurements":{{"Pcr16":"0x{}"}}}}"#, h(16)), Ok(vec![("16", 16)])),
        (format!(r#"{{"PCR0":"{}","pcr0":"{}"}}"#, h(1), h(2)), Err(r#"PCR0 is given twice ("PCR0" and "pcr0")"#)),
        (format!(r#"{{"PCR0":"{}","PCR00":"{}"}}"#, h(1), h(2)), Err("PCR0 is given twice")),
        (format!(r#"{{"PCR0":"{}","PCR0":"{}"}}"#, h(1), h(2)), Err(r#"key "PCR0" is given twice"#)),
        (format!(r#"{{"PCR0":"{}","k":{{"a":1,"\u0061":2}}}}"#, h(1)), Err(r#"key "a" is given twice"#)),
        (format!(r#"{{"PCR0":"{}","x":["PCR0","PCR0"],"y":"PCR0","z":{{"PCR0":"\"{{,"}}}}"#, h(1)), Ok(vec![("0", 1)])),
        (format!(r#"{{"Measurements":{{"PCR0":"{}"}},"PCR1":"{}"}}"#, h(1), h(2)), Err("beside \"Measurements\"")),
        (format!(r#"{{"Measurements":{{"PCR0":"{}","Pcr0":"{}"}}}}"#, h(1), h(2)), Err("given twice")),
        (format!(r#"{{"PCR+1":"{}"}}"#, h(1)), Err("not a number")),
        (format!(r#"{{"Pcrs":"{}"}}"#, h(1)), Err("not a number")),
        (format!(r#"{{"PCR65536":"{}"}}"#, h(1)), Err("not a number")),
        (format!(r#"{{"PCR\u0661":"{}"}}"#, h(1)), Err("not a number")),
        (r#"{"PCR0":7}"#.into(), Err("expected a hex string")),
        (r#"{"PCR0":"abcd"}"#.into(), Err("2 bytes")),
        (r#"{"PCR0":"zz"}"#.into(), Err("PCR0: not hex")),
        ("{}".into(), Err("no \"PCR<n>\" entry")),
        ("null".into(), Err("expected a JSON object")),
        ("[]".into(), Err("expected a JSON object")),
        ("{".into(), Err("not JSON")),
    ];
    let r = node(&cases.iter().map(|(text, _)| json!({"op": "pcrs_json", "text": text})).collect::<Vec<_>>());
    for ((text, want), r) in cases.iter().zip(&r) {
        match want {
            Ok(pcrs) => {
                assert_eq!(r["ok"], true, "{text}: {r}");
                let want: serde_json::Map<String, Value> =
                    pcrs.iter().map(|(i, b)| (i.to_string(), json!(format!("0x{}", h(*b))))).collect();
                assert_eq!(r["pcrs"], Value::Object(want), "{text}");
            }
            Err(why) => refused(r, why),
        }
    }
}
