//! Tests of [`super`]: hashing (v0.7 and v0.8), packing, gas, callData decoding.

use super::*;
use alloy_dyn_abi::DynSolValue;

fn op() -> UserOperationRequest {
    UserOperationRequest {
        chain_id: 31337,
        entry_point: ENTRY_POINT_V07,
        entry_point_version: None,
        sender: Address::repeat_byte(0x11),
        nonce: U256::from(7),
        factory: None,
        factory_data: Bytes::new(),
        init_code: None,
        call_data: encode::simple_execute(Address::repeat_byte(0x22), U256::from(5), Bytes::new()),
        call_gas_limit: 100_000,
        verification_gas_limit: 200_000,
        pre_verification_gas: U256::from(50_000),
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        paymaster: None,
        paymaster_verification_gas_limit: 0,
        paymaster_post_op_gas_limit: 0,
        paymaster_data: Bytes::new(),
    }
}

/// The hash computed a second way: alloy-dyn-abi's encoder over the words, built by
/// hand from the EntryPoint v0.7 source, rather than sol! types.
fn hash_dyn(o: &UserOperationRequest) -> B256 {
    let word = |hi: u128, lo: u128| DynSolValue::FixedBytes(B256::from(U256::from(hi) << 128 | U256::from(lo)), 32);
    let inner = DynSolValue::Tuple(vec![
        DynSolValue::Address(o.sender),
        DynSolValue::Uint(o.nonce, 256),
        DynSolValue::FixedBytes(keccak256(o.init_code().unwrap()), 32),
        DynSolValue::FixedBytes(keccak256(&o.call_data), 32),
        word(o.verification_gas_limit, o.call_gas_limit),
        DynSolValue::Uint(o.pre_verification_gas, 256),
        word(o.max_priority_fee_per_gas, o.max_fee_per_gas),
        DynSolValue::FixedBytes(keccak256(o.paymaster_and_data().unwrap()), 32),
    ])
    .abi_encode_params();
    let outer = DynSolValue::Tuple(vec![
        DynSolValue::FixedBytes(keccak256(inner), 32),
        DynSolValue::Address(o.entry_point),
        DynSolValue::Uint(U256::from(o.chain_id), 256),
    ])
    .abi_encode_params();
    keccak256(outer)
}

#[test]
fn hash_matches_an_independent_encoding_and_binds_every_field() {
    let base = op();
    assert_eq!(base.hash().unwrap(), hash_dyn(&base));
    let mut variants = vec![];
    let mut v = base.clone();
    v.chain_id = 1;
    variants.push(v);
    let mut v = base.clone();
    v.entry_point = Address::repeat_byte(9);
    variants.push(v);
    let mut v = base.clone();
    v.factory = Some(Address::repeat_byte(0xfa));
    v.factory_data = Bytes::from_static(&[1, 2, 3]);
    variants.push(v);
    let mut v = base.clone();
    v.paymaster = Some(Address::repeat_byte(0xbb));
    v.paymaster_verification_gas_limit = 1;
    v.paymaster_post_op_gas_limit = 2;
    v.paymaster_data = Bytes::from_static(&[4]);
    variants.push(v);
    let mut v = base.clone();
    v.max_priority_fee_per_gas += 1;
    variants.push(v);
    let mut v = base.clone();
    v.call_gas_limit += 1;
    variants.push(v);
    for v in &variants {
        assert_eq!(v.hash().unwrap(), hash_dyn(v));
        assert_ne!(v.hash().unwrap(), base.hash().unwrap());
    }
    // init_code and factory + factory_data are the same operation.
    let mut a = base.clone();
    a.factory = Some(Address::repeat_byte(0xfa));
    a.factory_data = Bytes::from_static(&[1, 2, 3]);
    let mut b = base.clone();
    b.init_code = Some([&[0xfa; 20][..], &[1, 2, 3]].concat().into());
    assert_eq!(a.hash().unwrap(), b.hash().unwrap());
}

/// The v0.8 hash computed a second way: alloy-dyn-abi's EIP-712 encoder over the typed data
/// as a wallet would receive it (`eth_signTypedData_v4` JSON), per EntryPoint v0.8's
/// comment that "UserOpHash can be generated using eth_signTypedData_v4".
fn hash_v08_typed_data(o: &UserOperationRequest) -> B256 {
    let p = o.packed(Bytes::new()).unwrap();
    let json = serde_json::json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
            ],
            "PackedUserOperation": [
                {"name": "sender", "type": "address"}, {"name": "nonce", "type": "uint256"},
                {"name": "initCode", "type": "bytes"}, {"name": "callData", "type": "bytes"},
                {"name": "accountGasLimits", "type": "bytes32"}, {"name": "preVerificationGas", "type": "uint256"},
                {"name": "gasFees", "type": "bytes32"}, {"name": "paymasterAndData", "type": "bytes"}
            ]
        },
        "primaryType": "PackedUserOperation",
        "domain": {"name": "ERC4337", "version": "1", "chainId": o.chain_id, "verifyingContract": o.entry_point},
        "message": {
            "sender": p.sender, "nonce": p.nonce.to_string(), "initCode": p.initCode, "callData": p.callData,
            "accountGasLimits": p.accountGasLimits, "preVerificationGas": p.preVerificationGas.to_string(),
            "gasFees": p.gasFees, "paymasterAndData": p.paymasterAndData
        }
    });
    let td: alloy_dyn_abi::TypedData = serde_json::from_value(json).unwrap();
    td.eip712_signing_hash().unwrap()
}

#[test]
fn v08_hash_is_the_eip712_hash_and_signs_it_raw() {
    let mut base = op();
    base.entry_point = ENTRY_POINT_V08;
    assert_eq!(base.version(), EntryPointVersion::V08, "the canonical v0.8 address implies v0.8");
    let h = base.hash().unwrap();
    assert_eq!(h, hash_v08_typed_data(&base));
    assert_ne!(h, hash_dyn(&base), "v0.8 is not the v0.7 hash");
    // v0.8 accounts verify the hash itself; v0.7 accounts its EIP-191 hash.
    assert_eq!(base.signing_digest(&h), h);
    let mut v7 = op();
    v7.entry_point = ENTRY_POINT_V08;
    v7.entry_point_version = Some(EntryPointVersion::V07);
    assert_eq!(v7.hash().unwrap(), hash_dyn(&v7));
    assert_eq!(v7.signing_digest(&h), alloy_primitives::eip191_hash_message(h.as_slice()));
    // Another address is v0.7 unless the request says v0.8.
    let mut other = op();
    other.entry_point = Address::repeat_byte(0x0e);
    assert_eq!(other.version(), EntryPointVersion::V07);
    other.entry_point_version = Some(EntryPointVersion::V08);
    // Every field is bound.
    let mut variants = vec![other.clone()];
    let mut v = other.clone();
    v.chain_id = 1;
    variants.push(v);
    let mut v = other.clone();
    v.paymaster = Some(Address::repeat_byte(0xbb));
    v.paymaster_verification_gas_limit = 1;
    v.paymaster_post_op_gas_limit = 2;
    v.paymaster_data = Bytes::from_static(&[4]);
    variants.push(v);
    let mut v = other.clone();
    v.factory = Some(Address::repeat_byte(0xfa));
    v.factory_data = Bytes::from_static(&[1, 2, 3]);
    variants.push(v);
    let mut v = other.clone();
    v.nonce = (U256::from(5u8) << 64) | U256::from(1u8);
    variants.push(v);
    let mut hashes: Vec<B256> = variants.iter().map(|v| v.hash().unwrap()).collect();
    for (v, h) in variants.iter().zip(&hashes) {
        assert_eq!(*h, hash_v08_typed_data(v));
    }
    hashes.push(h);
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), variants.len() + 1);
    // JSON: the version travels as "0.7" / "0.8" and is omitted when inferred.
    let json = serde_json::to_value(&other).unwrap();
    assert_eq!(json["entry_point_version"], "0.8");
    assert!(serde_json::to_value(op()).unwrap().get("entry_point_version").is_none());
}

#[test]
fn v08_eip7702_init_code_is_never_signed() {
    let mut o = op();
    o.entry_point = ENTRY_POINT_V08;
    for ic in [[&[0x77, 0x02][..], &[0u8; 18]].concat(), [&[0x77, 0x02][..], &[0u8; 18], &[1, 2, 3]].concat()] {
        o.init_code = Some(ic.into());
        assert_eq!(o.hash().unwrap_err().code, ErrorCode::AuthorizationDenied);
    }
    // The bare two-byte marker is shorter than a factory address: refused too.
    o.init_code = Some(vec![0x77, 0x02].into());
    assert!(o.hash().is_err());
    // Not the marker: a factory whose address starts with 0x7702.
    o.init_code = Some([&[0x77, 0x02][..], &[9u8; 18]].concat().into());
    assert!(o.hash().is_ok());
}

#[test]
fn malformed_packing_is_refused() {
    let mut o = op();
    o.init_code = Some(Bytes::from_static(&[1, 2]));
    assert_eq!(o.hash().unwrap_err().code, ErrorCode::Malformed);
    let mut o = op();
    o.paymaster_data = Bytes::from_static(&[1]);
    assert_eq!(o.hash().unwrap_err().code, ErrorCode::Malformed);
    let mut o = op();
    o.factory = Some(Address::ZERO);
    o.init_code = Some(Bytes::new());
    assert_eq!(o.hash().unwrap_err().code, ErrorCode::Malformed);
    let mut o = op();
    o.factory_data = Bytes::from_static(&[1]);
    assert_eq!(o.hash().unwrap_err().code, ErrorCode::Malformed);
}

#[test]
fn gas_sums_every_limit() {
    let mut o = op();
    o.paymaster = Some(Address::repeat_byte(1));
    o.paymaster_verification_gas_limit = 30_000;
    o.paymaster_post_op_gas_limit = 20_000;
    let g = o.gas().unwrap();
    assert_eq!(g.gas_limit, 100_000 + 200_000 + 50_000 + 30_000 + 20_000);
    assert_eq!(g.max_cost(), U256::from(400_000u64) * U256::from(2_000_000_000u64));
    o.call_gas_limit = u128::MAX;
    assert_eq!(o.gas().unwrap_err().code, ErrorCode::GasCap);
}

#[test]
fn decodes_every_supported_shape() {
    let (a, b) = (Address::repeat_byte(0xa), Address::repeat_byte(0xb));
    let d1 = Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 1]);
    let d2 = Bytes::from_static(&[0xca, 0xfe, 0xba, 0xbe]);
    let want = vec![
        Call { to: Some(a), value: U256::from(1), data: d1.clone() },
        Call { to: Some(b), value: U256::from(2), data: d2.clone() },
    ];
    let batch = [(a, U256::from(1), d1.clone()), (b, U256::from(2), d2.clone())];
    assert_eq!(decode_account_call(&encode::simple_execute_batch(&batch)).unwrap(), want);
    assert_eq!(decode_account_call(&encode::erc7579_batch(&batch)).unwrap(), want);
    assert_eq!(decode_account_call(&encode::erc7579_single(a, U256::from(1), &d1)).unwrap(), want[..1]);
    assert_eq!(decode_account_call(&encode::simple_execute(a, U256::from(1), d1.clone())).unwrap(), want[..1]);
    let v06 = simple_account::v06::executeBatchCall { dest: vec![a, b], func: vec![d1.clone(), d2.clone()] };
    let got = decode_account_call(&v06.abi_encode()).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|c| c.value.is_zero()));
    let v08 = simple_account::v08::executeBatchCall {
        calls: vec![
            simple_account::v08::Call { target: a, value: U256::from(1), data: d1.clone() },
            simple_account::v08::Call { target: b, value: U256::from(2), data: d2.clone() },
        ],
    };
    assert_eq!(decode_account_call(&v08.abi_encode()).unwrap(), want);
    // v0.7 executeBatch with an empty value array: zero values.
    let c = simple_account::executeBatchCall { dest: vec![a, b], value: vec![], func: vec![d1, d2] };
    assert!(decode_account_call(&c.abi_encode()).unwrap().iter().all(|c| c.value.is_zero()));
}

#[test]
fn refuses_what_it_cannot_see() {
    let a = Address::repeat_byte(0xa);
    let code = |d: &[u8]| decode_account_call(d).unwrap_err().code;
    assert_eq!(code(&[]), ErrorCode::SelectorNotAllowed);
    assert_eq!(code(&[1, 2, 3, 4, 5]), ErrorCode::SelectorNotAllowed);
    // Delegatecall, staticcall, unknown call type, mode selector, exec type.
    for (i, b) in [(0usize, 0xffu8), (0, 0xfe), (0, 0x02), (6, 0x01), (1, 0x02), (31, 0x01)] {
        let mut mode = [0u8; 32];
        mode[i] = b;
        let c = erc7579::executeCall { mode: B256::from(mode), executionCalldata: Bytes::from(vec![0u8; 52]) };
        assert_eq!(code(&c.abi_encode()), ErrorCode::ArgumentRejected, "mode {mode:?}");
    }
    // Short single execution.
    let c = erc7579::executeCall { mode: B256::ZERO, executionCalldata: Bytes::from(vec![0u8; 51]) };
    assert_eq!(code(&c.abi_encode()), ErrorCode::ArgumentRejected);
    // Mismatched batch lengths.
    let c = simple_account::executeBatchCall { dest: vec![a], value: vec![U256::ZERO; 2], func: vec![Bytes::new()] };
    assert_eq!(code(&c.abi_encode()), ErrorCode::ArgumentRejected);
    // Trailing bytes are not canonical.
    let mut d = encode::simple_execute(a, U256::ZERO, Bytes::new()).to_vec();
    d.extend_from_slice(&[0u8; 32]);
    assert_eq!(code(&d), ErrorCode::ArgumentRejected);
    // Truncated.
    let d = encode::simple_execute_batch(&[(a, U256::ZERO, Bytes::new())]);
    assert_eq!(code(&d[..d.len() - 1]), ErrorCode::ArgumentRejected);
    // Empty batch.
    assert_eq!(code(&encode::erc7579_batch(&[])), ErrorCode::ArgumentRejected);
    // Too many calls.
    let many: Vec<_> = (0..=MAX_INNER_CALLS).map(|_| (a, U256::ZERO, Bytes::new())).collect();
    assert_eq!(code(&encode::simple_execute_batch(&many)), ErrorCode::TooLarge);
}

#[test]
fn json_and_cbor_round_trip() {
    let mut o = op();
    o.paymaster = Some(Address::repeat_byte(3));
    o.paymaster_post_op_gas_limit = u128::MAX;
    let json = serde_json::to_string(&o).unwrap();
    assert_eq!(serde_json::from_str::<UserOperationRequest>(&json).unwrap(), o);
    let cbor = crate::frame::to_cbor(&o).unwrap();
    assert_eq!(crate::frame::from_cbor::<UserOperationRequest>(&cbor).unwrap(), o);
}

proptest::proptest! {
    #[test]
    fn decoder_never_panics(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let _ = decode_account_call(&data);
        for sel in [
            erc7579::executeCall::SELECTOR,
            simple_account::executeCall::SELECTOR,
            simple_account::executeBatchCall::SELECTOR,
            simple_account::v06::executeBatchCall::SELECTOR,
            simple_account::v08::executeBatchCall::SELECTOR,
        ] {
            let mut d = sel.to_vec();
            d.extend_from_slice(&data);
            let _ = decode_account_call(&d);
        }
    }
}
