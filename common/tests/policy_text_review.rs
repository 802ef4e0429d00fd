//! What the owner reads against what is enforced (a review of 2026-12-07). Each test states
//! what `bridle policy explain` (and the console, which shows the same text) says and what
//! the engine does; the review's probes that found the parsing sound are kept too.

use alloy_primitives::{address, Address, Bytes, U256};
use bridle_common::policy::explain::explain;
use bridle_common::policy::file::{parse_file, resolve_text};
use bridle_common::policy::{evaluate, CompiledPolicy, Context, Counters, Operation};
use bridle_common::tx::Call;

const T0: u64 = 1_800_000_000;
const USDC: Address = address!("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48");
const ALICE: Address = address!("00000000000000000000000000000000000a11ce");
const OWNER: Address = address!("00000000000000000000000000000000000000aa");
const ACCOUNT: Address = address!("00000000000000000000000000000000000000cc");

fn compile(text: &str) -> Result<CompiledPolicy, String> {
    let doc = resolve_text(text, T0).map_err(|d| d.to_string())?;
    CompiledPolicy::compile(doc).map_err(|d| d.to_string())
}

fn transfer(to: Address, amount: U256) -> Vec<u8> {
    let mut d = hex::decode("a9059cbb").unwrap();
    d.extend_from_slice(&[0u8; 12]);
    d.extend_from_slice(to.as_slice());
    d.extend_from_slice(&amount.to_be_bytes::<32>());
    d
}

fn eval(p: &CompiledPolicy, now: u64, calls: &[Call]) -> Result<(), String> {
    let c = Counters::default();
    let ctx = Context { now, anchor: T0, owner: OWNER, account: ACCOUNT };
    let op = Operation {
        chain_id: 1,
        calls,
        gas: None,
        place: bridle_common::allowance::Place::Own { chain_id: 1, nonce: 0 },
        holder: ACCOUNT,
    };
    evaluate(p, &c, &ctx, &op).map(|_| ()).map_err(|d| d.to_string())
}

/// Explain said a stream gives `rate` "more every `every`" — a step per period — while the
/// engine accrues `rate × elapsed / every` continuously (RULES §3): half-way through the
/// first week half of it is spendable. Explain now says how it accrues.
#[test]
fn a_stream_is_explained_as_it_accrues() {
    let p = compile(&format!(
        r#"
name = "stream"
chains = [1]
valid_for = "8 days"
max_duration = "30 days"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[streams]]
initial = "0 USDC"
rate = "1000 USDC"
every = "1 week"
max = "4000 USDC"
"#
    ));
    let p = p.unwrap_or_else(|e| panic!("{e}"));
    let text = explain(&p);
    let line = text.lines().find(|l| l.starts_with("streams[0]")).unwrap().to_string();
    assert!(line.contains("0 USDC at the start, then 1000 USDC per 1 week accrued continuously"), "{line}");
    let half = T0 + 302_400;
    let call = |n: u64| Call { to: Some(USDC), value: U256::ZERO, data: Bytes::from(transfer(ALICE, U256::from(n))) };
    assert!(eval(&p, half, &[call(500_000_000)]).is_ok(), "half the week's amount half-way through it");
    assert!(eval(&p, half, &[call(500_000_001)]).is_err());
}

/// A mixed-case address whose EIP-55 checksum is wrong (one letter's case flipped — what a
/// one-character typo in a checksummed address also produces) is accepted without a word;
/// explain then prints the *correctly* checksummed form, so the typo is never flagged.
#[test]
fn a_mixed_case_address_whose_checksum_fails_is_refused() {
    let good = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    // Flip the case of one letter: the checksum no longer holds.
    let bad = "0xa0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
    let text = |a: &str| {
        format!(
            r#"
name = "checksum"
chains = [1]
valid_for = "1h"
recipients = ["{a}"]
[[calls]]
target = "{a}"
functions = ["receive()"]
"#
        )
    };
    assert!(compile(&text(good)).is_ok());
    let r = compile(&text(bad));
    println!(
        "bad checksum: {:?}",
        r.as_ref().map(|p| explain(p)
            .lines()
            .filter(|l| l.contains("calls[0]") || l.starts_with("recipients"))
            .map(str::to_string)
            .collect::<Vec<_>>())
    );
    let e = r.map(|_| ()).expect_err("a mixed-case address with a wrong EIP-55 checksum is refused");
    assert!(e.contains("checksum does not hold") && e.contains("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), "{e}");
    // All lowercase (no checksum claimed) is taken.
    assert!(compile(&text(&good.to_lowercase())).is_ok());
}

/// `FnSpec` is an untagged enum: a typo in an argument-rule table must not be read as a
/// rule without arguments (that would drop the constraint).
#[test]
fn untagged_function_rule_with_a_typo_is_refused() {
    let text = format!(
        r#"
name = "typo"
chains = [1]
valid_for = "1h"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = [{{ signature = "transfer(address to,uint256 amount)", arg = [{{ arg = "to", op = "eq", value = "$owner" }}] }}]
"#
    );
    let r = compile(&text);
    println!("typo'd args: {:?}", r.as_ref().err());
    assert!(r.is_err());
}

/// TOML's depth is bounded by `check_json_depth`, which only knows JSON's `"` strings: a
/// TOML literal string `'"'` opens a "string" the scanner never sees closed, and every
/// bracket after it goes uncounted. The TOML parser must then bound its own recursion
/// (no stack overflow on a deep array) — run on a 2 MiB thread, like tokio's blocking pool.
#[test]
fn toml_nesting_past_the_json_scanner_does_not_overflow() {
    let depth = 200_000;
    let text = format!(
        "name = 'x\"'\nchains = [1]\nvalid_for = \"1h\"\nquota = {}1{}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(bridle_common::bounds::check_json_depth(&text, "t").is_ok(), "scanner counted the brackets");
    let h = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || parse_file(&text).map(|_| ()).map_err(|d| d.to_string()))
        .unwrap();
    let r = h.join().expect("parser thread died");
    println!("deep TOML: {:?}", r.as_ref().err().map(|e| &e[..e.len().min(200)]));
    assert!(r.is_err());
}

/// Durations: "M" reads as minutes. A rate limit window "1M" (month to many) is one minute.
#[test]
fn duration_units_are_what_explain_says() {
    let p = compile(
        r#"
name = "rate"
chains = [1]
valid_for = "1h"
[[rate_limits]]
max = 10
window = "1M"
"#,
    )
    .unwrap();
    let line = explain(&p).lines().find(|l| l.starts_with("rate_limits[0]")).unwrap().to_string();
    println!("{line}");
    assert!(line.contains("per 1 minute"), "{line}");
}

/// Explain never names `escalate.per`: check it at least never promises less holding than
/// enforced (per-request wording vs cumulative per period: enforcement is at least as strict).
#[test]
fn escalate_names_its_period() {
    let p = compile(&format!(
        r#"
name = "esc"
chains = [1]
valid_for = "1h"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "1000 USDC"
per = "day"
[escalate]
above_value = "100 USDC"
per = "minute"
"#
    ))
    .unwrap();
    let line = explain(&p).lines().find(|l| l.starts_with("escalate")).unwrap().to_string();
    println!("{line}");
    // "100 USDC a minute" was shown as "100 USDC" alone, which reads the same as the
    // default, a day.
    assert!(line.contains("has moved more than 100 USDC per minute"), "{line}");
}

/// `bridle policy from-erc7715`: a stream's `maxAmount` the mapper could not read (a JSON
/// number past 2^64, which serde_json holds as a float) was taken as absent, and the stream
/// bounded by what it can accrue before expiry — far more than the request's maximum —
/// while the note said the request had "no maxAmount". Now the permission is not mapped.
#[test]
fn an_erc7715_max_amount_it_cannot_read_leaves_the_permission_unmapped() {
    let now = T0;
    // 20 ETH max (2e19 wei, past u64), 0.001 ETH a second, for a day: 86.4 ETH accrue.
    let req = format!(
        r#"{{"chainId": "0x1", "expiry": {}, "permission": {{"type": "native-token-stream", "data": {{
            "initialAmount": "0x0", "amountPerSecond": "0x38d7ea4c68000", "maxAmount": 20000000000000000000,
            "startTime": {now}}}}}}}"#,
        now + 86_400
    );
    let m = bridle_common::erc7715::map(&req, &[], now, None).unwrap();
    assert!(!m.toml.contains("[[streams]]"), "{}", m.toml);
    assert!(
        m.notes.iter().any(|n| n.contains("maxAmount is not a whole number") && n.contains("not mapped")),
        "{:?}",
        m.notes
    );
}

/// The same with a hex `maxAmount` padded with leading zeros to 32 bytes + 1 digit.
#[test]
fn erc7715_padded_hex_max_amount() {
    let now = T0;
    let max_hex = format!("0x0{:064x}", 20_000_000_000_000_000_000u128);
    let req = format!(
        r#"{{"chainId": 1, "expiry": {}, "permission": {{"type": "native-token-stream", "data": {{
            "amountPerSecond": "0x38d7ea4c68000", "maxAmount": "{max_hex}"}}}}}}"#,
        now + 86_400
    );
    let m = bridle_common::erc7715::map(&req, &[], now, None).unwrap();
    let p = compile(&m.toml).unwrap();
    let max = p.doc.streams[0].max;
    println!(
        "padded hex: mapped stream max: {max} wei; notes {:?}",
        m.notes.iter().filter(|n| n.contains("maxAmount")).collect::<Vec<_>>()
    );
    assert!(max <= U256::from(20_000_000_000_000_000_000u128), "mapped max {max}");
}

/// A future `startTime` the mapper cannot read (an ISO string) is dropped without a note:
/// the mapped session may spend from the grant on.
#[test]
fn an_erc7715_start_time_it_cannot_read_leaves_the_permission_unmapped() {
    let now = T0;
    let req = format!(
        r#"{{"chainId": 1, "expiry": {}, "permission": {{"type": "native-token-periodic", "data": {{
            "periodAmount": "0xde0b6b3a7640000", "periodDuration": 86400, "startTime": 1.8e9}}}}}}"#,
        now + 86_400 * 3
    );
    let _ = now;
    // 1.8e9 == T0: use a later start so it is "in the future".
    let req = req.replace("1.8e9", "1.8001e9");
    let m = bridle_common::erc7715::map(&req, &[], now, None).unwrap();
    println!("{}", m.toml);
    let noted = m.notes.iter().any(|n| n.contains("startTime"));
    let mapped = m.toml.contains("valid_after");
    println!("startTime noted: {noted}, mapped: {mapped}");
    assert!(noted && !mapped, "a startTime 2.8 hours ahead must not be dropped silently");
    assert!(!m.toml.contains("[[limits]]"), "the permission is not mapped: {}", m.toml);
}

/// The policy `name` is the one free text of a policy that `bridle policy explain` prints
/// raw (every other free text is `{:?}`-escaped or restricted to identifiers): compile only
/// bounds its length. A name holding line feeds writes fake lines into the explanation, and
/// an ANSI escape (SGR 8 "conceal", or black on black) hides every real line after it on
/// the owner's terminal. The CLI escapes such characters everywhere else it prints another
/// party's text (`client::printable`, SECURITY.md on `from-erc7715` notes).
#[test]
fn the_policy_name_cannot_write_lines_or_escapes_into_explain() {
    let name = "safe\\\"\\ncalls: none allowed (this session can sign no transaction)\\n\\u001b[8m";
    let text = format!(
        r#"
name = "{name}"
chains = [1]
valid_for = "1h"
max_value_per_call = "1000 ETH"
[[calls]]
target = "*"
functions = ["*"]
"#
    );
    let p = compile(&text).unwrap_or_else(|e| panic!("{e}"));
    let out = explain(&p);
    println!("{}", out.escape_debug());
    let fake = out.lines().any(|l| l == "calls: none allowed (this session can sign no transaction)");
    let esc = out.contains('\u{1b}');
    println!("fake line injected: {fake}; raw ESC in explain: {esc}; name bytes: {}", p.doc.name.len());
    assert!(!fake && !esc, "the policy name writes its own lines and terminal escapes into `bridle policy explain`");
}

/// `recipients` is explained as "token transfers only to …", but only ERC-20
/// `transfer`/`transferFrom` calldata is recipient-checked (RULES §5). A token function the
/// owner names by signature — ERC-677 `transferAndCall` on a listed token, an NFT's
/// `safeTransferFrom` — moves tokens to anyone, and the explanation gives no hint that
/// `recipients` does not bind it (the token line says only "not metered").
#[test]
fn recipients_are_explained_as_binding_erc20_transfers_only() {
    let link = address!("514910771af9ca656af840dff83e8264ecf986ca");
    let p = compile(&format!(
        r#"
name = "recipients"
chains = [1]
valid_for = "1h"
recipients = ["$owner"]
tokens = {{ LINK = {{ address = "{link}", decimals = 18 }} }}
[[calls]]
target = "LINK"
functions = ["transfer(address,uint256)"]
[[limits]]
max = "10 LINK"
per = "day"
"#
    ))
    .unwrap();
    let out = explain(&p);
    let line = out.lines().find(|l| l.starts_with("recipients")).unwrap().to_string();
    println!("{line}");
    assert!(
        line.contains("ERC-20 transfer and transferFrom only to the owner")
            && line.contains("transferAndCall, safeTransferFrom, … — is not checked against this list"),
        "{line}"
    );
    // transfer to Alice: refused (recipients).
    let t = Call { to: Some(link), value: U256::ZERO, data: Bytes::from(transfer(ALICE, U256::from(1u64))) };
    assert!(eval(&p, T0 + 1, &[t]).is_err());
    // transferAndCall(alice, 10^24, ""): one million LINK to Alice, past the 10 LINK/day
    // cap — signed while a policy could name it on a listed token (RULES §5 called it the
    // owner's explicit choice); since a review of 2026-12-07 (AG-212 4.1) such a policy is
    // refused: on a listed token only the four metered functions may be named.
    let named = format!(
        r#"
name = "recipients"
chains = [1]
valid_for = "1h"
tokens = {{ LINK = {{ address = "{link}", decimals = 18 }} }}
[[calls]]
target = "LINK"
functions = ["transfer(address,uint256)", "transferAndCall(address,uint256,bytes)"]
[[limits]]
max = "10 LINK"
per = "day"
"#
    );
    let d = CompiledPolicy::compile(resolve_text(&named, T0).unwrap()).unwrap_err();
    assert!(d.reason.contains("transferAndCall") && d.reason.contains("may name only"), "{d}");
}

/// Probes found sound: each text must be refused (or read as written).
#[test]
fn sound_parsing_probes() {
    let base = format!(
        "name = \"x\"\nchains = [1]\nvalid_for = \"1h\"\ntokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6 }} }}\n"
    );
    let refused = [
        ("section typo", format!("{base}[[limit]]\nmax = \"1 USDC\"\nper = \"day\"\n")),
        ("field typo", format!("{base}[[limits]]\nmax = \"1 USDC\"\nper = \"day\"\nperiod = \"week\"\n")),
        ("duplicate TOML key", format!("{base}quota = 5\nquota = 500\n")),
        ("float quota", format!("{base}quota = 5e2\n")),
        ("string quota", format!("{base}quota = \"5\"\n")),
        ("exponent amount", format!("{base}[[limits]]\nmax = \"1e6 USDC\"\nper = \"day\"\n")),
        ("lowercase symbol", format!("{base}[[limits]]\nmax = \"1 usdc\"\nper = \"day\"\n")),
        ("confusable symbol", format!("{base}[[limits]]\nmax = \"1 USD\u{0421}\"\nper = \"day\"\n")),
        ("comma amount", format!("{base}[[limits]]\nmax = \"1,000 USDC\"\nper = \"day\"\n")),
        ("period typo", format!("{base}[[limits]]\nmax = \"1 USDC\"\nper = \"daily\"\n")),
        ("ambiguous m period", format!("{base}[[limits]]\nmax = \"1 USDC\"\nper = \"m\"\n")),
        ("negative uint arg", format!("{base}[[calls]]\ntarget = \"USDC\"\nfunctions = [{{ signature = \"transfer(address to,uint256 amount)\", args = [{{ arg = \"amount\", op = \"lte\", value = -1 }}] }}]\n")),
        ("float uint arg", format!("{base}[[calls]]\ntarget = \"USDC\"\nfunctions = [{{ signature = \"transfer(address to,uint256 amount)\", args = [{{ arg = \"amount\", op = \"lte\", value = 1.5 }}] }}]\n")),
        ("other token's unit", format!("name = \"x\"\nchains = [1]\nvalid_for = \"1h\"\ntokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6 }}, DAI = {{ address = \"0x6b175474e89094c44da98b954eedeac495271d0f\", decimals = 18 }} }}\n[[calls]]\ntarget = \"USDC\"\nfunctions = [{{ signature = \"transfer(address to,uint256 amount)\", args = [{{ arg = \"amount\", op = \"lte\", value = \"5 DAI\" }}] }}]\n")),
        ("json duplicate", r#"{"name":"x","chains":[1],"valid_for":"1h","quota":5,"quota":500}"#.to_string()),
        ("json escaped duplicate", format!(r#"{{"name":"x","chains":[1],"valid_for":"1h","tokens":{{"USDC":{{"address":"{USDC}","decimals":6}},"\u0055SDC":{{"address":"{USDC}","decimals":18}}}}}}"#)),
        ("token named like native", format!("name = \"x\"\nchains = [1]\nvalid_for = \"1h\"\ntokens = {{ Ether = {{ address = \"{USDC}\", decimals = 6 }} }}\n")),
        ("token chain not in chains", format!("name = \"x\"\nchains = [1]\nvalid_for = \"1h\"\ntokens = {{ USDC = {{ address = \"{USDC}\", decimals = 6, chain_id = 10 }} }}\n")),
    ];
    for (what, text) in &refused {
        let r = compile(text);
        println!(
            "{what}: {}",
            r.as_ref()
                .err()
                .map(|e| e.lines().next().unwrap_or("").chars().take(140).collect::<String>())
                .unwrap_or_else(|| "ACCEPTED".into())
        );
        assert!(r.is_err(), "{what} was accepted");
    }
}

/// A policy naming a payable router function with tight argument rules and no native cap
/// (no `max_value_per_call`, no native limit or stream, no `recipients`). Explain says
/// "Everything not allowed below is denied" and lists only the swap with its argument
/// rules: nothing in it mentions native value. The engine lets the call carry any value
/// (here 1000 ETH); on a Uniswap V3 SwapRouter a swap whose input is not WETH leaves that
/// ETH in the router, where anyone can take it with `refundETH()`.
#[test]
fn unbounded_native_value_on_named_calls_is_explained() {
    let router = address!("e592427a0aece92de3edee1f18e0157c05861564");
    let p = compile(&format!(
        r#"
name = "swap-only"
chains = [1]
valid_for = "1h"
tokens = {{ USDC = {{ address = "{USDC}", decimals = 6 }} }}
[[limits]]
max = "100 USDC"
per = "day"
[[calls]]
target = "{router}"
functions = [{{ signature = "exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160) params)", args = [
  {{ arg = "0.0", op = "eq", value = "USDC" }},
  {{ arg = "0.3", op = "eq", value = "$account" }},
  {{ arg = "0.5", op = "lte", value = "100 USDC" }},
] }}]
"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let out = explain(&p);
    println!("{out}");
    let mentions_value =
        out.lines().any(|l| l.starts_with("native value: no bound — every allowed call may carry any amount"));
    // exactInputSingle(USDC, WETH, 500, $account, deadline, 100 USDC, 0, 0) with 1000 ETH attached.
    let mut d = hex::decode("414bf389").unwrap();
    let word = |a: &[u8]| {
        let mut w = [0u8; 32];
        w[32 - a.len()..].copy_from_slice(a);
        w
    };
    d.extend_from_slice(&word(USDC.as_slice()));
    d.extend_from_slice(&word(address!("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2").as_slice()));
    d.extend_from_slice(&word(&500u32.to_be_bytes()));
    d.extend_from_slice(&word(ACCOUNT.as_slice()));
    d.extend_from_slice(&word(&(T0 + 600).to_be_bytes()));
    d.extend_from_slice(&word(&100_000_000u64.to_be_bytes()));
    d.extend_from_slice(&[0u8; 64]);
    let value = U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64));
    let r = eval(&p, T0 + 1, &[Call { to: Some(router), value, data: Bytes::from(d) }]);
    println!("explain mentions native value: {mentions_value}; swap carrying 1000 ETH: {r:?}");
    assert!(r.is_ok() && mentions_value, "1000 ETH ride along an allowed call: explain must say so\n{out}");
    // With a bound on native value, the line goes.
    let bounded = compile(&format!(
        "name = \"b\"\nchains = [1]\nvalid_for = \"1h\"\nmax_value_per_call = \"0 ETH\"\n[[calls]]\ntarget = \"{router}\"\nfunctions = [\"*\"]\n"
    ))
    .unwrap();
    assert!(!explain(&bounded).contains("native value: no bound"));
}

/// Addresses and EIP-55 (a review of 2026-12-07): what is taken and what is refused, in a
/// policy file and in a policy document (JSON, as `bridle policy normalize` prints it), which
/// `resolve_text` takes too.
#[test]
fn addresses_pass_eip55_in_files_and_documents() {
    let text = |a: &str| {
        format!(
            r#"
name = "eip55"
chains = [1]
valid_for = "1h"

[tokens]
USDC = {{ address = "{a}", decimals = 6 }}

[[calls]]
target = "USDC"
functions = ["transfer(address,uint256)"]
"#
        )
    };
    let ok = |a: &str| bridle_common::policy::file::resolve_text(&text(a), 1_800_000_000);
    let usdc = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"; // EIP-55 form
    assert!(ok(usdc).is_ok(), "checksummed: {:?}", ok(usdc).err());
    assert!(ok(&usdc.to_lowercase()).is_ok(), "lowercase");
    let upper = format!("0x{}", &usdc[2..].to_uppercase());
    assert!(ok(&upper).is_ok(), "all uppercase: {:?}", ok(&upper).err());
    let upper_x = format!("0X{}", &usdc[2..].to_uppercase());
    assert!(ok(&upper_x).is_ok(), "0X + uppercase: {:?}", ok(&upper_x).err());
    let bad = "0xa0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"; // one letter's case changed
    let e = ok(bad).unwrap_err();
    assert!(e.to_string().contains("EIP-55"), "{e}");
    // An address with digits only past the prefix and no letters: no case at all.
    assert!(ok("0x1111111111111111111111111111111111111111").is_ok());
    // Surrounding spaces.
    assert!(ok(&format!(" {usdc} ")).is_ok(), "{:?}", ok(&format!(" {usdc} ")).err());

    // The same policy given as a policy *document* (JSON, as `bridle policy normalize`
    // prints it; `resolve_text` takes it as it is): the mistyped mixed-case address.
    let doc = serde_json::to_string(&ok(usdc).unwrap()).unwrap();
    assert!(doc.contains(usdc) || doc.contains(&usdc.to_lowercase()), "{doc}");
    let doc_bad = doc.replace(usdc, bad).replace(&usdc.to_lowercase(), bad);
    assert!(doc_bad.contains(bad));
    let r = bridle_common::policy::file::resolve_text(&doc_bad, 1_800_000_000);
    let e = r.map(|_| ()).expect_err("a document's mis-checksummed address is refused");
    assert!(e.to_string().contains("EIP-55"), "{e}");
    // The document as normalize prints it is taken.
    assert!(bridle_common::policy::file::resolve_text(&doc, 1_800_000_000).is_ok());
}

/// `from-erc7715` took an `expiry` it could not read (a float such as `1.8000036e9`, an ISO
/// date) as absent — "no expiry; the policy lasts 24 h from the grant" — so a one-hour grant
/// mapped to a 24-hour session (a review of 2026-12-07). The mapping now stops.
#[test]
fn an_erc7715_expiry_it_cannot_read_stops_the_mapping() {
    let now = 1_800_000_000u64;
    let req = r#"{"chainId": 1, "expiry": 1.8000036e9, "permission": {"type": "native-token-periodic", "data": {
        "periodAmount": "0xde0b6b3a7640000", "periodDuration": 86400}}}"#;
    let e = bridle_common::erc7715::map(req, &[], now, None).map(|_| ()).expect_err("an unreadable expiry");
    assert!(e.contains("expiry") && e.contains("not a whole number"), "{e}");
}
