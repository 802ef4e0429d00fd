//! Tests of the JSON-RPC face's parsing and replies (no enclave: the end-to-end ones are in
//! `tests/tests`).

use super::*;
use crate::rpc_tx::{parse_tx, signed_tx_result};
use crate::rpc_userop::parse_user_op;
use alloy_primitives::{keccak256, U256};
use bridle_common::protocol::Signed;
use bridle_common::tx::{AccessEntry, Eip1559Request, LegacyRequest, TxRequest};
use serde_json::value::{to_raw_value, RawValue};

fn raw(v: Value) -> Box<RawValue> {
    to_raw_value(&v).expect("serializable")
}

fn tx(v: Value) -> Result<(Option<Address>, TxRequest), RpcError> {
    parse_tx(&raw(v))
}

fn tx_text(s: &str) -> Result<(Option<Address>, TxRequest), RpcError> {
    let r: &RawValue = serde_json::from_str(s).expect("valid JSON");
    parse_tx(r)
}

fn err_msg(r: Result<(Option<Address>, TxRequest), RpcError>) -> (i64, String) {
    let e = r.expect_err("an error");
    (e.code, e.message)
}

const TYPE2: &str = r#""gas":"0x5208","maxFeePerGas":"0x2","maxPriorityFeePerGas":"0x1","chainId":"0x1""#;

#[test]
fn eip1559_conversion() {
    let (from, tx) = tx(json!({
        "from": "0x1111111111111111111111111111111111111111",
        "to": "0x2222222222222222222222222222222222222222",
        "gas": "0x5208", "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
        "value": "0xde0b6b3a7640000", "input": "0xabcd", "nonce": "0x7", "chainId": "0x1",
    }))
    .unwrap();
    assert_eq!(from, Some(Address::repeat_byte(0x11)));
    let TxRequest::Eip1559(t) = tx else { panic!() };
    assert_eq!(t.gas_limit, 21000);
    assert_eq!(t.max_fee_per_gas, 2_000_000_000);
    assert_eq!(t.max_priority_fee_per_gas, 1_000_000_000);
    assert_eq!(t.nonce, 7);
    assert_eq!(t.chain_id, 1);
    assert_eq!(t.value, U256::from(10u64.pow(18)));
    assert_eq!(t.data.as_ref(), &[0xab, 0xcd]);
}

#[test]
fn legacy_and_errors() {
    let (_, t) = tx(json!({
        "to": null, "gas": 100000, "gasPrice": "0x1", "nonce": "0x0", "chainId": 5, "data": "0x60"
    }))
    .unwrap();
    let TxRequest::Legacy(t) = t else { panic!() };
    assert_eq!(t.to, None);
    assert_eq!(t.chain_id, 5);

    let e = tx(json!({"gasPrice": "0x1", "gas": "0x1", "chainId": "0x1"})).unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    assert!(e.message.contains("nonce"), "{}", e.message);
    let e = tx(json!({"nonce": "0x1", "gas": "0x1", "chainId": "0x1"})).unwrap_err();
    assert!(e.message.contains("fee"), "{}", e.message);
    let e =
        tx(json!({"type": "0x2", "maxFeePerGas": "0x1", "gas": "0x1", "chainId": "0x1", "nonce": "0x0"})).unwrap_err();
    assert!(e.message.contains("maxPriorityFeePerGas"), "{}", e.message);
    let e = tx(json!({"data": "0x01", "input": "0x02", "gasPrice": "0x1"})).unwrap_err();
    assert!(e.message.contains("differ"));
    let e = tx(json!({"gasPrice": "0x1", "bogus": 1})).unwrap_err();
    assert!(e.message.contains("bogus"));
    let e = tx(json!({"gasPrice": "0x1", "maxFeePerGasBlob": 1})).unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    let e = tx(json!({"maxFeePerBlobGas": "0x1"})).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
    let e = tx(json!({"nonce": "12", "gasPrice": "0x1"})).unwrap_err();
    assert!(e.message.contains("nonce"));
}

/// Malformed quantities, huge hex and wrong types: each gets an invalid-params error naming
/// the field (as the `Value`-based conversion answered).
#[test]
fn malformed_fields_are_named() {
    let cases: &[(&str, &str)] = &[
        (r#""nonce":"0x""#, "nonce is not a valid quantity"),
        (r#""nonce":"12""#, "nonce must be a 0x-prefixed hex quantity"),
        (r#""nonce":"0xzz""#, "nonce is not a valid hex quantity"),
        (r#""nonce":"0x_""#, "nonce is not a valid hex quantity"),
        (r#""nonce":"0x1_0""#, "nonce is not a valid hex quantity"),
        (r#""nonce":"0x10000000000000000""#, "nonce is out of range"),
        (r#""nonce":-1"#, "nonce must be a non-negative integer"),
        (r#""nonce":1.5"#, "nonce must be a non-negative integer"),
        (r#""nonce":18446744073709551616"#, "nonce must be a non-negative integer"),
        (r#""nonce":true"#, "nonce must be a hex quantity"),
        (r#""nonce":["0x1"]"#, "nonce must be a hex quantity"),
        (r#""nonce":{"a":1}"#, "nonce must be a hex quantity"),
        (
            r#""value":"0x1ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff""#,
            "value is not a valid quantity",
        ),
        (r#""input":"0xabc""#, "input is not valid hex"),
        (r#""input":"abcd""#, "input must be 0x-prefixed hex"),
        (r#""input":12"#, "input must be a 0x-hex string"),
        (r#""to":5"#, "to is not a 20-byte hex address"),
        (r#""to":"0x1234""#, "to is not a 20-byte hex address"),
        (r#""from":{}"#, "from is not a 20-byte hex address"),
        (r#""accessList":{}"#, "accessList must be an array"),
        (r#""accessList":["x"]"#, "accessList[0].address is missing"),
        (r#""accessList":[{"address":null}]"#, "accessList[0].address is not a 20-byte hex address"),
        (
            r#""accessList":[{"address":"0x2222222222222222222222222222222222222222","storageKeys":"0x1"}]"#,
            "accessList[0].storageKeys must be an array",
        ),
        (
            r#""accessList":[{"address":"0x2222222222222222222222222222222222222222","storageKeys":["0x1"]}]"#,
            "accessList[0].storageKeys has a key that is not 32 bytes of hex",
        ),
        (r#""type":"0x7""#, "unknown transaction type 0x7"),
    ];
    for (field, want) in cases {
        let (code, msg) = err_msg(tx_text(&format!(r#"{{"nonce":"0x0",{TYPE2},{field}}}"#)));
        assert_eq!(code, INVALID_PARAMS, "{field}");
        assert!(msg.contains(want), "{field}: {msg}");
    }
    // Huge hex data is read (the body limit bounds it), and a huge quantity is refused.
    let big = format!("0x{}", "ab".repeat(200_000));
    let (_, t) = tx(json!({"nonce": "0x0", "gas": "0x1", "maxFeePerGas": "0x2", "maxPriorityFeePerGas": "0x1",
        "chainId": "0x1", "data": big}))
    .unwrap();
    assert!(matches!(t, TxRequest::Eip1559(t) if t.data.len() == 200_000));
    let (_, msg) = err_msg(tx(json!({"nonce": format!("0x{}", "f".repeat(1000)), "gasPrice": "0x1"})));
    assert!(msg.contains("nonce is not a valid quantity"), "{msg}");
    // Not an object.
    for v in [json!("0x00"), json!([]), json!(null), json!(1)] {
        let (code, msg) = err_msg(tx(v));
        assert_eq!(code, INVALID_PARAMS);
        assert!(msg.contains("the transaction must be a JSON object"), "{msg}");
    }
}

/// The offending key named is the least one (as a sorted map met it), whatever the order in
/// the body; duplicate keys: the last wins; escaped keys are keys.
#[test]
fn key_order_duplicates_and_escapes() {
    let e = tx_text(r#"{"zzz":1,"blobs":[]}"#).unwrap_err();
    assert_eq!(e.code, UNSUPPORTED);
    assert!(e.message.contains("blobs"), "{}", e.message);
    let e = tx_text(r#"{"blobs":[],"aaa":1}"#).unwrap_err();
    assert_eq!(e.code, INVALID_PARAMS);
    assert!(e.message.contains("unknown transaction field aaa"), "{}", e.message);
    let (_, t) = tx_text(&format!(r#"{{"nonce":"0x1",{TYPE2},"nonce":"0x2"}}"#)).unwrap();
    assert!(matches!(t, TxRequest::Eip1559(t) if t.nonce == 2));
    let (_, t) = tx_text(&format!(r#"{{"n\u006fnce":"0x3",{TYPE2}}}"#)).unwrap();
    assert!(matches!(t, TxRequest::Eip1559(t) if t.nonce == 3));
    // null is absent.
    let (_, t) = tx_text(&format!(r#"{{"nonce":"0x4",{TYPE2},"accessList":null,"value":null,"to":null}}"#)).unwrap();
    assert!(matches!(t, TxRequest::Eip1559(t) if t.nonce == 4 && t.value == U256::ZERO && t.to.is_none()));
}

#[test]
fn type4_is_passed_as_eip7702() {
    let (_, t) = tx(json!({
        "type": "0x4", "chainId": "0x1",
        "authorizationList": [{"chainId": "0x1", "address": "0x3333333333333333333333333333333333333333", "nonce": "0x2", "yParity": "0x0", "r": "0x1", "s": "0x1"}]
    }))
    .unwrap();
    let TxRequest::Eip7702 { chain_id, authorization_list } = t else { panic!() };
    assert_eq!(chain_id, 1);
    assert_eq!(authorization_list.len(), 1);
    assert_eq!(authorization_list[0].nonce, 2);
    // An authorization list on an otherwise type-2 transaction is still 7702.
    let (_, t) = tx(json!({"chainId": "0x1", "maxFeePerGas": "0x1", "authorizationList": []})).unwrap();
    assert!(matches!(t, TxRequest::Eip7702 { .. }));
    let e = tx(json!({"chainId": "0x1", "authorizationList": {}})).unwrap_err();
    assert!(e.message.contains("authorizationList must be an array"), "{}", e.message);
    let e = tx(json!({"chainId": "0x1", "authorizationList": [1]})).unwrap_err();
    assert!(e.message.contains("authorizationList[0] must be an object"), "{}", e.message);
    let e = tx(json!({"chainId": "0x1", "authorizationList": [{"chainId": "0x1", "nonce": "0x0"}]})).unwrap_err();
    assert!(e.message.contains("authorizationList[0].address"), "{}", e.message);
}

/// What alloy clients send: alloy's own `TransactionRequest`, serialized, converts to the
/// same transaction.
#[test]
fn alloy_transaction_requests_convert() {
    use alloy_rpc_types_eth::{AccessList, AccessListItem, TransactionInput, TransactionRequest};
    let to = Address::repeat_byte(0x22);
    let key = B256::repeat_byte(0x33);
    let req = TransactionRequest::default()
        .from(Address::repeat_byte(0x11))
        .to(to)
        .nonce(9)
        .gas_limit(60_000)
        .max_fee_per_gas(30_000_000_000)
        .max_priority_fee_per_gas(1_000_000_000)
        .value(U256::from(12345u64))
        .input(TransactionInput::both(Bytes::from(vec![0xa9, 0x05, 0x9c, 0xbb])))
        .access_list(AccessList(vec![AccessListItem { address: to, storage_keys: vec![key] }]));
    let mut req = req;
    req.chain_id = Some(8453);
    let (from, t) = tx(serde_json::to_value(&req).unwrap()).unwrap();
    assert_eq!(from, Some(Address::repeat_byte(0x11)));
    assert_eq!(
        t,
        TxRequest::Eip1559(Eip1559Request {
            chain_id: 8453,
            nonce: 9,
            max_fee_per_gas: 30_000_000_000,
            max_priority_fee_per_gas: 1_000_000_000,
            gas_limit: 60_000,
            to: Some(to),
            value: U256::from(12345u64),
            data: Bytes::from(vec![0xa9, 0x05, 0x9c, 0xbb]),
            access_list: vec![AccessEntry { address: to, storage_keys: vec![key] }],
        })
    );
    let mut legacy = TransactionRequest::default().to(to).nonce(1).gas_limit(21_000).gas_price(7);
    legacy.chain_id = Some(1);
    let (_, t) = tx(serde_json::to_value(&legacy).unwrap()).unwrap();
    assert_eq!(
        t,
        TxRequest::Legacy(LegacyRequest {
            chain_id: 1,
            nonce: 1,
            gas_price: 7,
            gas_limit: 21_000,
            to: Some(to),
            value: U256::ZERO,
            data: Bytes::new()
        })
    );
}

/// The earlier `Value`-built reply, kept here as the reference for the typed one's bytes.
fn reference_reply(tx: &TxRequest, signed: &Signed) -> Value {
    fn q<T: std::fmt::LowerHex>(v: T) -> Value {
        Value::String(format!("{v:#x}"))
    }
    let raw = signed.raw_transaction.clone().unwrap();
    let r = U256::from_be_slice(&signed.signature[..32]);
    let s = U256::from_be_slice(&signed.signature[32..64]);
    let v = signed.signature[64];
    let parity: u64 = if v >= 27 { (v - 27) as u64 } else { v as u64 } & 1;
    let hash = keccak256(&raw);
    let obj = match tx {
        TxRequest::Eip1559(t) => json!({
            "type": "0x2", "chainId": q(t.chain_id), "nonce": q(t.nonce), "to": t.to, "gas": q(t.gas_limit),
            "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas), "maxFeePerGas": q(t.max_fee_per_gas),
            "value": q(t.value), "input": t.data,
            "accessList": t.access_list.iter().map(|e| json!({"address": e.address, "storageKeys": e.storage_keys})).collect::<Vec<_>>(),
            "v": q(parity), "r": q(r), "s": q(s), "yParity": q(parity), "hash": hash,
        }),
        TxRequest::Legacy(t) => json!({
            "type": "0x0", "chainId": q(t.chain_id), "nonce": q(t.nonce), "to": t.to, "gas": q(t.gas_limit),
            "gasPrice": q(t.gas_price), "value": q(t.value), "input": t.data,
            "v": q(U256::from(t.chain_id) * U256::from(2) + U256::from(35 + parity)),
            "r": q(r), "s": q(s), "hash": hash,
        }),
        TxRequest::Eip7702 { .. } => unreachable!(),
    };
    json!({"raw": raw, "tx": obj})
}

#[test]
fn signed_tx_reply_bytes_unchanged() {
    let mut sig = vec![0u8; 65];
    sig[0] = 0x01;
    sig[31] = 0xff;
    sig[63] = 0x07;
    let to = Address::repeat_byte(0x22);
    let txs = [
        TxRequest::Eip1559(Eip1559Request {
            chain_id: 1,
            nonce: 0,
            max_fee_per_gas: 2,
            max_priority_fee_per_gas: 0,
            gas_limit: 21_000,
            to: None,
            value: U256::ZERO,
            data: Bytes::new(),
            access_list: vec![AccessEntry { address: to, storage_keys: vec![B256::repeat_byte(1)] }],
        }),
        TxRequest::Legacy(LegacyRequest {
            chain_id: 8453,
            nonce: 77,
            gas_price: u128::MAX,
            gas_limit: u64::MAX,
            to: Some(to),
            value: U256::MAX,
            data: Bytes::from(vec![1, 2, 3]),
        }),
    ];
    for (t, v) in txs.iter().zip([28u8, 0]) {
        sig[64] = v;
        let signed = Signed {
            session: to,
            digest: B256::ZERO,
            signature: Bytes::from(sig.clone()),
            raw_transaction: Some(Bytes::from(vec![0x02, 0xf8, 0x01])),
        };
        let want = serde_json::to_string(&reference_reply(t, &signed)).unwrap();
        let got = serde_json::to_string(&signed_tx_result(t.clone(), signed).unwrap()).unwrap();
        assert_eq!(got, want);
    }
}

fn body(s: &str) -> Result<Body<'_>, Box<RpcResponse>> {
    read_body(s.as_bytes())
}

fn text(r: &RpcResponse) -> String {
    serde_json::to_string(r).unwrap()
}

#[test]
fn envelopes() {
    // Parse errors, bad batches, not objects: one response, id null.
    let Err(r) = body(r#"{"jsonrpc":"2.0","#) else { panic!() };
    let t = text(&r);
    assert!(t.starts_with(r#"{"error":{"code":-32700,"data":{"code":"malformed","reason":"EOF while parsing"#), "{t}");
    assert!(t.ends_with(r#""message":"parse error"},"id":null,"jsonrpc":"2.0"}"#), "{t}");
    let Err(r) = body("[]") else { panic!() };
    assert_eq!(
        text(&r),
        r#"{"error":{"code":-32600,"message":"invalid request: empty batch"},"id":null,"jsonrpc":"2.0"}"#
    );
    let many = format!("[{}]", vec!["1"; 101].join(","));
    let Err(r) = body(&many) else { panic!() };
    assert!(text(&r).contains("a batch exceeds 100 requests"), "{}", text(&r));
    // Counted while read: a megabyte of items is refused at the 101st.
    let huge = format!("[{}]", vec!["0"; 500_000].join(","));
    let Err(r) = body(&huge) else { panic!() };
    assert!(text(&r).contains("a batch exceeds 100 requests"));
    let Err(r) = body("[1,2") else { panic!() };
    assert!(text(&r).contains("-32700"), "a malformed batch is a parse error: {}", text(&r));
    let Err(r) = read_body(b"[\"\xff\"]") else { panic!() };
    assert!(text(&r).contains("-32700"), "a batch that is not UTF-8 is a parse error: {}", text(&r));
    for b in ["1", "\"x\"", " null ", "true"] {
        let Err(r) = body(b) else { panic!() };
        assert!(text(&r).contains("invalid request: not an object"), "{b}");
    }
    let Err(r) = body("") else { panic!() };
    assert!(text(&r).contains("-32700"));
    let Ok(Body::Batch(items)) = body(r#"[1, {"jsonrpc":"2.0","method":"m","id":1}]"#) else { panic!() };
    assert!(items[0].is_none() && items[1].is_some());

    // The envelope's checks.
    let check_text = |s: &str| {
        let Ok(Body::One(env)) = body(s) else { panic!("{s}") };
        match check(&env) {
            Ok(c) => format!("ok {:?} {} {}", c.id, c.method, c.params.len()),
            Err(r) => text(&r),
        }
    };
    assert_eq!(check_text(r#"{"jsonrpc":"2.0","method":"m","params":[1,{}],"id":7}"#), "ok Some(Number(7)) m 2");
    assert_eq!(check_text(r#"{"jsonrpc":"2.0","method":"m"}"#), "ok None m 0");
    let many = format!(r#"{{"jsonrpc":"2.0","method":"m","id":1,"params":[{}]}}"#, vec!["0"; 100_000].join(","));
    assert!(check_text(&many).contains("params has more than 16 items"), "{}", check_text(&many));
    assert!(check_text(r#"{"jsonrpc":"2.0","method":"m","id":1,"params":{}}"#).contains("params must be an array"));
    assert_eq!(check_text(r#"{"jsonrpc":"2.0","method":"m","id":null,"params":null}"#), "ok Some(Null) m 0");
    assert_eq!(check_text(r#"{"id":"a","id":"b","jsonrpc":"2.0","method":"m"}"#), r#"ok Some(String("b")) m 0"#);
    assert_eq!(
        check_text(r#"{"jsonrpc":"2.0","method":"m","id":{}}"#),
        r#"{"error":{"code":-32600,"message":"invalid request: bad id"},"id":null,"jsonrpc":"2.0"}"#
    );
    assert!(check_text(r#"{"jsonrpc":"2.0","method":"m","id":true}"#).contains("bad id"));
    assert_eq!(
        check_text(r#"{"method":"m","id":1}"#),
        r#"{"error":{"code":-32600,"message":"invalid request: jsonrpc must be \"2.0\""},"id":1,"jsonrpc":"2.0"}"#
    );
    assert!(check_text(r#"{"jsonrpc":"2.0","method":5,"id":1}"#).contains("method must be a string"));
    let t = check_text(r#"{"jsonrpc":"2.0","method":"m","params":{"a":1},"id":"x"}"#);
    assert!(t.starts_with(r#"{"error":{"code":-32602,"data":{"code":"malformed""#), "{t}");
    assert!(t.ends_with(r#""id":"x","jsonrpc":"2.0"}"#), "{t}");
}

#[test]
fn result_replies() {
    let r = response(json!(1), Ok(RpcResult::Signature(Bytes::from(vec![0xab]))));
    assert_eq!(text(&r), r#"{"id":1,"jsonrpc":"2.0","result":"0xab"}"#);
    let r = response(
        json!("q"),
        Ok(RpcResult::UserOperation(UserOpResult { signature: Bytes::new(), user_op_hash: B256::ZERO })),
    );
    assert_eq!(
        text(&r),
        format!(r#"{{"id":"q","jsonrpc":"2.0","result":{{"signature":"0x","userOpHash":"{}"}}}}"#, B256::ZERO)
    );
    let r = response(Value::Null, Ok(RpcResult::Json(json!([]))));
    assert_eq!(text(&r), r#"{"id":null,"jsonrpc":"2.0","result":[]}"#);
}

#[test]
fn user_op_conversion() {
    let ep = Address::repeat_byte(0xee);
    let op = parse_user_op(
        &raw(json!({
            "sender": "0x1111111111111111111111111111111111111111", "nonce": "0x1",
            "factory": "0x2222222222222222222222222222222222222222", "factoryData": "0xab",
            "callData": "0xb61d27f6", "callGasLimit": "0x10", "verificationGasLimit": "0x20",
            "preVerificationGas": "0x30", "maxFeePerGas": "0x40", "maxPriorityFeePerGas": "0x5",
            "paymaster": "0x3333333333333333333333333333333333333333", "paymasterVerificationGasLimit": "0x6",
            "paymasterPostOpGasLimit": "0x7", "paymasterData": "0x", "signature": "0x"
        })),
        ep,
        Some(10),
    )
    .unwrap();
    assert_eq!(op.chain_id, 10);
    assert_eq!(op.entry_point, ep);
    assert_eq!(op.factory, Some(Address::repeat_byte(0x22)));
    assert_eq!(op.factory_data.as_ref(), &[0xab]);
    assert_eq!((op.call_gas_limit, op.verification_gas_limit, op.max_fee_per_gas), (0x10, 0x20, 0x40));
    assert_eq!(op.paymaster_post_op_gas_limit, 7);
    let e =
        parse_user_op(&raw(json!({"sender": "0x1111111111111111111111111111111111111111"})), ep, Some(1)).unwrap_err();
    assert!(e.message.contains("nonce"), "{}", e.message);
    let e = parse_user_op(&raw(json!({"eip7702Auth": {}})), ep, Some(1)).unwrap_err();
    assert_eq!(e.data.unwrap()["code"], "authorization_denied");
    let e = parse_user_op(&raw(json!({"bogus": 1})), ep, Some(1)).unwrap_err();
    assert!(e.message.contains("bogus"));
    let e = parse_user_op(&raw(json!({"chainId": "0x2"})), ep, Some(1)).unwrap_err();
    assert!(e.message.contains("chainId differs"), "{}", e.message);
    let e = parse_user_op(&raw(json!({"entryPointVersion": 8, "chainId": 1})), ep, None).unwrap_err();
    assert!(e.message.contains("entryPointVersion"), "{}", e.message);
    let e = parse_user_op(&raw(json!("op")), ep, None).unwrap_err();
    assert!(e.message.contains("the user operation must be a JSON object"), "{}", e.message);
}

#[test]
fn codes() {
    assert_eq!(rpc_code(ErrorCode::SpendCap), TRANSACTION_REJECTED);
    assert_eq!(rpc_code(ErrorCode::Unauthenticated), UNAUTHORIZED);
    assert_eq!(rpc_code(ErrorCode::Replayed), UNAUTHORIZED);
    assert_eq!(rpc_code(ErrorCode::Malformed), INVALID_PARAMS);
    assert_eq!(rpc_code(ErrorCode::Unsupported), UNSUPPORTED);
    assert_eq!(rpc_code(ErrorCode::Internal), INTERNAL_ERROR);
    assert_eq!(rpc_code(ErrorCode::AuthorizationDenied), TRANSACTION_REJECTED);
}
