//! The engine's payload for each of the model's requests.

use super::*;
use bridle_common::tx::{AccessEntry, AuthorizationRequest, LegacyRequest};

/// The engine's payload for a model request (a permit's owner is [`ACCOUNT`]).
pub fn payload(req: &Req) -> SignPayload {
    payload_for(req, ACCOUNT)
}

/// The engine's payload for a model request of the session `account`.
pub fn payload_for(req: &Req, account: Address) -> SignPayload {
    match req {
        Req::Tx { chain_id, nonce, to, value, data, gas_limit, max_fee_per_gas, max_priority_fee_per_gas, access_list } => {
            SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
                chain_id: *chain_id,
                nonce: *nonce,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                gas_limit: *gas_limit,
                to: *to,
                value: *value,
                data: data.clone(),
                access_list: access_list
                    .iter()
                    .map(|(address, keys)| AccessEntry { address: *address, storage_keys: keys.clone() })
                    .collect(),
            }))
        }
        Req::Legacy { chain_id, nonce, to, value, data, gas_limit, gas_price } => {
            SignPayload::Transaction(TxRequest::Legacy(LegacyRequest {
                chain_id: *chain_id,
                nonce: *nonce,
                gas_price: *gas_price,
                gas_limit: *gas_limit,
                to: *to,
                value: *value,
                data: data.clone(),
            }))
        }
        Req::Eip7702 { chain_id, authorizations } => SignPayload::Transaction(TxRequest::Eip7702 {
            chain_id: *chain_id,
            authorization_list: authorizations
                .iter()
                .map(|&(chain_id, address, nonce)| AuthorizationRequest { chain_id, address, nonce })
                .collect(),
        }),
        Req::Redeem { chain_id, nonce, manager, entries, gas_limit, max_fee_per_gas, max_priority_fee_per_gas } => {
            use bridle_common::delegation::*;
            let parts: Vec<_> = entries
                .iter()
                .map(|(root, calls)| {
                    let chain = root
                        .map(|d| Delegation {
                            delegate: account,
                            delegator: d,
                            authority: B256::repeat_byte(0xff),
                            caveats: vec![],
                            salt: U256::ZERO,
                            signature: Bytes::new(),
                        })
                        .into_iter()
                        .collect::<Vec<_>>();
                    match calls.as_slice() {
                        [(to, value, data)] => (chain, MODE_SINGLE, single_execution(*to, *value, data)),
                        _ => (chain, MODE_BATCH, batch_execution(calls)),
                    }
                })
                .collect();
            SignPayload::Transaction(TxRequest::Eip1559(Eip1559Request {
                chain_id: *chain_id,
                nonce: *nonce,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                gas_limit: *gas_limit,
                to: Some(*manager),
                value: U256::ZERO,
                data: encode_redemption(&parts).into(),
                access_list: vec![],
            }))
        }
        Req::Permit { chain_id, token, spender, value, deadline } => SignPayload::TypedData(
            serde_json::json!({
                "types": {
                    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                        {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
                    "Permit": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"},
                        {"name": "value", "type": "uint256"}, {"name": "nonce", "type": "uint256"},
                        {"name": "deadline", "type": "uint256"}]},
                "primaryType": "Permit",
                "domain": {"name": "Token", "version": "1", "chainId": chain_id, "verifyingContract": token},
                "message": {"owner": account, "spender": spender, "value": value.to_string(), "nonce": 0, "deadline": deadline}
            })
            .to_string(),
        ),
        Req::Permit2 { chain_id, contract, spender, details, sig_deadline, batch } => {
            let detail = |(token, amount, expiration): &(Address, U256, u64)| {
                serde_json::json!({"token": token, "amount": amount.to_string(), "expiration": expiration, "nonce": 0})
            };
            let (primary, details_type, details) = if *batch {
                ("PermitBatch", "PermitDetails[]", serde_json::Value::Array(details.iter().map(detail).collect()))
            } else {
                ("PermitSingle", "PermitDetails", detail(&details[0]))
            };
            permit2_message(
                (*chain_id, *contract),
                (primary, serde_json::json!([{"name": "details", "type": details_type}, {"name": "spender", "type": "address"},
                    {"name": "sigDeadline", "type": "uint256"}])),
                ("PermitDetails", serde_json::json!([{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                    {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}])),
                serde_json::json!({"details": details, "spender": spender, "sigDeadline": sig_deadline}),
            )
        }
        Req::Permit2Transfer { chain_id, contract, spender, permitted, deadline, batch } => {
            let one = |(token, amount): &(Address, U256)| serde_json::json!({"token": token, "amount": amount.to_string()});
            let (primary, permitted_type, permitted) = if *batch {
                ("PermitBatchTransferFrom", "TokenPermissions[]", serde_json::Value::Array(permitted.iter().map(one).collect()))
            } else {
                ("PermitTransferFrom", "TokenPermissions", one(&permitted[0]))
            };
            permit2_message(
                (*chain_id, *contract),
                (primary, serde_json::json!([{"name": "permitted", "type": permitted_type}, {"name": "spender", "type": "address"},
                    {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint256"}])),
                ("TokenPermissions", serde_json::json!([{"name": "token", "type": "address"}, {"name": "amount", "type": "uint256"}])),
                serde_json::json!({"permitted": permitted, "spender": spender, "nonce": "7", "deadline": deadline}),
            )
        }
        Req::UserOp { chain_id, entry_point, sender, nonce, calls, gas, max_fee_per_gas, max_priority_fee_per_gas } => {
            SignPayload::UserOperation(UserOperationRequest {
                chain_id: *chain_id,
                entry_point: *entry_point,
                entry_point_version: None,
                sender: *sender,
                nonce: *nonce,
                factory: None,
                factory_data: Bytes::new(),
                init_code: None,
                call_data: encode::simple_execute_batch(calls),
                call_gas_limit: *gas as u128,
                verification_gas_limit: 0,
                pre_verification_gas: U256::ZERO,
                max_fee_per_gas: *max_fee_per_gas,
                max_priority_fee_per_gas: *max_priority_fee_per_gas,
                paymaster: None,
                paymaster_verification_gas_limit: 0,
                paymaster_post_op_gas_limit: 0,
                paymaster_data: Bytes::new(),
            })
        }
    }
}

/// A Permit2 message in the domain `{name: "Permit2", chainId, verifyingContract}` of
/// `(chain, contract)`: its primary type and fields, the one struct they name, the message.
fn permit2_message(
    (chain_id, contract): (u64, Address),
    (primary, fields): (&str, serde_json::Value),
    (member, member_fields): (&str, serde_json::Value),
    message: serde_json::Value,
) -> SignPayload {
    let mut types = serde_json::Map::new();
    types.insert(
        "EIP712Domain".into(),
        serde_json::json!([{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"}]),
    );
    types.insert(member.into(), member_fields);
    types.insert(primary.into(), fields);
    SignPayload::TypedData(
        serde_json::json!({
            "types": types,
            "primaryType": primary,
            "domain": {"name": "Permit2", "chainId": chain_id, "verifyingContract": contract},
            "message": message
        })
        .to_string(),
    )
}
