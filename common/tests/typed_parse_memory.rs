//! The memory a typed-data parse takes, measured by a counting allocator against the bound
//! the enclave's memory plan counts per worker (`typed::MAX_PARSE_BYTES`). A typed-data
//! request is parsed before its stamp can be checked (the stamp covers the EIP-712 digest),
//! so anyone who knows a session's address can send these.
//!
//! One test in its own binary: the allocator's peak is process-wide.

use bridle_common::error::ErrorCode;
use bridle_common::typed;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator with the same layout; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let n = NOW.fetch_add(l.size(), Relaxed) + l.size();
        PEAK.fetch_max(n, Relaxed);
        // SAFETY: the caller's layout, unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        NOW.fetch_sub(l.size(), Relaxed);
        // SAFETY: `p` came from `alloc` with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes allocated while parsing `text`, beyond what was live before, and what the
/// parse keeps (its result).
fn peak_of(text: &str) -> (usize, usize, Result<(), ErrorCode>) {
    let base = NOW.load(Relaxed);
    PEAK.store(base, Relaxed);
    let parsed = typed::parse(text);
    let kept = NOW.load(Relaxed) - base;
    let r = parsed.map(|_| ()).map_err(|d| d.code);
    (PEAK.load(Relaxed) - base, kept, r)
}

fn name(prefix: &str, i: usize, len: usize) -> String {
    let s = format!("{prefix}{i}");
    format!("{s}{}", "x".repeat(len.saturating_sub(s.len())))
}

/// `depth` structs, each with `fields` fields of the next (names of `name_len` bytes), and
/// a message of `objects` copies of the last one in an array.
fn fan_out(depth: usize, fields: usize, name_len: usize) -> String {
    let mut types = String::from(r#""EIP712Domain":[{"name":"name","type":"string"}]"#);
    for i in 0..depth {
        let fs: Vec<String> = (0..fields)
            .map(|f| format!(r#"{{"name":"{}","type":"{}"}}"#, name("f", f, name_len), name("S", i + 1, name_len)))
            .collect();
        types.push_str(&format!(r#","{}":[{}]"#, name("S", i, name_len), fs.join(",")));
    }
    types.push_str(&format!(r#","{}":[{{"name":"x","type":"uint8"}}]"#, name("S", depth, name_len)));
    format!(
        r#"{{"types":{{{types}}},"primaryType":"{}","domain":{{"name":"x"}},"message":{{}}}}"#,
        name("S", 0, name_len)
    )
}

/// A message of `n` struct values, each with `fields` fields named `name_len` bytes.
fn many_objects(n: usize, fields: usize, name_len: usize) -> String {
    let fs: Vec<String> =
        (0..fields).map(|f| format!(r#"{{"name":"{}","type":"uint8"}}"#, name("f", f, name_len))).collect();
    let item: Vec<String> = (0..fields).map(|f| format!(r#""{}":1"#, name("f", f, name_len))).collect();
    let item = format!("{{{}}}", item.join(","));
    let items = vec![item; n].join(",");
    format!(
        r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}}],"{s}":[{}],"M":[{{"name":"items","type":"{s}[]"}}]}},"primaryType":"M","domain":{{"name":"x"}},"message":{{"items":[{items}]}}}}"#,
        fs.join(","),
        s = name("S", 0, name_len)
    )
}

/// `n` byte strings sent as arrays of integers, and `n` long strings.
fn bulk_values(n: usize, len: usize) -> String {
    let arr = format!("[{}]", vec!["255"; len].join(","));
    let bytes = vec![arr; n].join(",");
    format!(
        r#"{{"types":{{"EIP712Domain":[],"M":[{{"name":"b","type":"bytes[]"}}]}},"primaryType":"M","domain":{{}},"message":{{"b":[{bytes}]}}}}"#
    )
}

/// A message of one field of type `ty` holding `n` copies of `item` (a JSON value).
fn list_of(ty: &str, item: &str, n: usize) -> String {
    let items = vec![item; n].join(",");
    format!(
        r#"{{"types":{{"EIP712Domain":[{{"name":"name","type":"string"}}],"M":[{{"name":"v","type":"{ty}"}}]}},"primaryType":"M","domain":{{"name":"x"}},"message":{{"v":[{items}]}}}}"#
    )
}

/// The same document sent as a JSON string holding it (as some wallets do).
fn as_string(doc: String) -> String {
    serde_json::to_string(&doc).unwrap()
}

/// The largest `n` in `1..=hi` whose document is not refused as too large.
fn largest_accepted(hi: usize, doc: &dyn Fn(usize) -> String) -> Option<usize> {
    let too_large = |n: usize| typed::parse(&doc(n)).err().is_some_and(|d| d.code == ErrorCode::TooLarge);
    if too_large(1) {
        return None;
    }
    let (mut lo, mut hi) = (1, hi);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if too_large(mid) {
            hi = mid - 1;
        } else {
            lo = mid;
        }
    }
    Some(lo)
}

#[test]
fn a_typed_data_parse_stays_within_its_bound() {
    type Family = (String, Box<dyn Fn(usize) -> String>, usize);
    let mut families: Vec<Family> = Vec::new();
    for (f, l) in [(16, 2), (64, 2), (64, 16), (8, 256), (2, 256), (3, 100)] {
        families.push((format!("fan-out depth n × {f} fields, names {l}"), Box::new(move |n| fan_out(n, f, l)), 8));
    }
    for (d, l) in [(8, 2), (3, 2), (2, 64)] {
        families.push((format!("fan-out depth {d} × n fields, names {l}"), Box::new(move |n| fan_out(d, n, l)), 64));
    }
    for (f, l) in
        [(1, 1), (0, 1), (64, 1), (64, 16), (8, 16), (8, 250), (1, 250), (64, 3), (2, 64), (64, 250), (30, 250)]
    {
        families.push((format!("n objects × {f} fields, names {l}"), Box::new(move |n| many_objects(n, f, l)), 20_000));
    }
    for l in [1, 3, 16, 160] {
        families.push((format!("n byte arrays of {l}"), Box::new(move |n| bulk_values(n, l)), 20_000));
    }
    families.push(("one byte array of n".into(), Box::new(|n| bulk_values(1, n)), 100_000));
    let long = format!("\"{}\"", "s".repeat(60_000));
    families.push(("n strings of 60 000".into(), Box::new(move |n| list_of("string[]", &long, n)), 10));
    families.push(("n strings of 1".into(), Box::new(|n| list_of("string[]", "\"s\"", n)), 20_000));
    let max = format!("\"0x{}\"", "f".repeat(64));
    families.push(("n uint256 of 2^256-1".into(), Box::new(move |n| list_of("uint256[]", &max, n)), 20_000));
    families.push((
        "n bytes32".into(),
        Box::new(|n| list_of("bytes32[]", &format!("\"0x{}\"", "ab".repeat(32)), n)),
        20_000,
    ));
    families.push(("n × [[[1]]] uint8[][][][]".into(), Box::new(|n| list_of("uint8[][][][]", "[[[1]]]", n)), 20_000));
    families.push(("n × [[[]]] uint8[][][][]".into(), Box::new(|n| list_of("uint8[][][][]", "[[[]]]", n)), 20_000));
    families.push(("as a string: n objects".into(), Box::new(|n| as_string(many_objects(n, 1, 1))), 20_000));
    families.push((
        "as a string: n strings of 1".into(),
        Box::new(|n| as_string(list_of("string[]", "\"s\"", n))),
        20_000,
    ));
    let mut worst = 0;
    // Documents refused: their refusal must come before the memory is taken. The shapes a
    // review found past the first bounds (a tuple of structs as the primary type, structs
    // named like elementary types, many small maps), and below, each family one step past
    // its largest accepted size.
    let tuple = {
        let f16 = |t: &str| (0..16).map(|f| format!(r#"{{"name":"f{f}","type":"{t}"}}"#)).collect::<Vec<_>>().join(",");
        format!(
            r#"{{"types":{{"EIP712Domain":[],"C":[{{"name":"c","type":"uint8"}}],"B":[{}],"A":[{}]}},"primaryType":"({}A)","domain":{{}},"message":{{}}}}"#,
            f16("C"),
            f16("B"),
            "A,".repeat(30_000)
        )
    };
    let uint_names = {
        let mut types = String::from(r#""EIP712Domain":[],"P":["#);
        types.push_str(&(0..64).map(|f| format!(r#"{{"name":"f{f}","type":"uint1"}}"#)).collect::<Vec<_>>().join(","));
        types.push(']');
        for i in 1..4 {
            let fs: Vec<String> = (0..64).map(|f| format!(r#"{{"name":"f{f}","type":"uint{}"}}"#, i + 1)).collect();
            types.push_str(&format!(r#","uint{i}":[{}]"#, fs.join(",")));
        }
        types.push_str(r#","uint4":[{"name":"x","type":"uint8"}]"#);
        format!(r#"{{"types":{{{types}}},"primaryType":"P","domain":{{}},"message":{{}}}}"#)
    };
    let maps = format!("[{}]", vec![r#"{"":0}"#; 9_300].join(","));
    let refused: Vec<(String, String)> = vec![
        ("tuple primary type".into(), tuple),
        ("uint-named fan-out".into(), uint_names),
        ("small maps".into(), maps),
    ];
    for (what, text) in &refused {
        let (peak, _, r) = peak_of(text);
        eprintln!("{what}: {} bytes of text, peak {peak} bytes, {r:?}", text.len());
        assert!(r.is_err(), "{what} accepted");
        assert!(peak <= typed::MAX_PARSE_BYTES, "{what}: {peak} > {}", typed::MAX_PARSE_BYTES);
        worst = worst.max(peak);
    }
    for (what, doc, hi) in &families {
        let Some(n) = largest_accepted(*hi, doc.as_ref()) else {
            eprintln!("{what}: refused at every size");
            continue;
        };
        let text = doc(n);
        let started = std::time::Instant::now();
        let (peak, kept, r) = peak_of(&text);
        // Printed, never asserted: time is for benchmarks.
        let took = started.elapsed();
        eprintln!("{what}: n = {n}, {} bytes of text, peak {peak} bytes, kept {kept}, {took:?}, {r:?}", text.len());
        assert!(peak <= typed::MAX_PARSE_BYTES, "{what}: {peak} > {}", typed::MAX_PARSE_BYTES);
        worst = worst.max(peak);
        if n < *hi {
            let (peak, _, r) = peak_of(&doc(n + 1));
            eprintln!("{what}: n = {}, peak {peak} bytes, {r:?}", n + 1);
            assert_eq!(r, Err(ErrorCode::TooLarge), "{what}");
            assert!(peak <= typed::MAX_PARSE_BYTES, "{what}: {peak} > {}", typed::MAX_PARSE_BYTES);
        }
    }
    eprintln!("worst {worst} of {}", typed::MAX_PARSE_BYTES);
}
