//! ERC-4337 v0.7/v0.8 user operation in its RPC JSON form → [`UserOperationRequest`],
//! read from the request bytes into [`RpcUserOp`] (see [`crate::rpc_json`]).

use crate::rpc::RpcError;
use crate::rpc_json::{
    json_object, object, opt_address, opt_bytes, opt_u128, opt_u256, opt_u64, present, required, Scalar,
};
use alloy_primitives::Address;
use bridle_common::userop::{EntryPointVersion, UserOperationRequest};
use serde_json::value::RawValue;

json_object! {
    /// A user operation as `bridle_signUserOperation` takes it.
    pub struct RpcUserOp<'a> {
        sender: "sender" => Scalar<'a>,
        nonce: "nonce" => Scalar<'a>,
        factory: "factory" => Scalar<'a>,
        factory_data: "factoryData" => Scalar<'a>,
        init_code: "initCode" => Scalar<'a>,
        call_data: "callData" => Scalar<'a>,
        call_gas_limit: "callGasLimit" => Scalar<'a>,
        verification_gas_limit: "verificationGasLimit" => Scalar<'a>,
        pre_verification_gas: "preVerificationGas" => Scalar<'a>,
        max_fee_per_gas: "maxFeePerGas" => Scalar<'a>,
        max_priority_fee_per_gas: "maxPriorityFeePerGas" => Scalar<'a>,
        paymaster: "paymaster" => Scalar<'a>,
        paymaster_verification_gas_limit: "paymasterVerificationGasLimit" => Scalar<'a>,
        paymaster_post_op_gas_limit: "paymasterPostOpGasLimit" => Scalar<'a>,
        paymaster_data: "paymasterData" => Scalar<'a>,
        signature: "signature" => Scalar<'a>,
        chain_id: "chainId" => Scalar<'a>,
        entry_point_version: "entryPointVersion" => Scalar<'a>,
    }
}

/// Convert an ERC-4337 v0.7/v0.8 RPC user operation (the same fields; `entryPointVersion`
/// "0.8" marks a v0.8 entry point at a non-canonical address). `chainId` comes from the
/// params or the object; nothing is filled in.
pub fn parse_user_op(
    raw: &RawValue,
    entry_point: Address,
    chain_id: Option<u64>,
) -> Result<UserOperationRequest, RpcError> {
    let o: RpcUserOp = object(raw, "the user operation")?;
    if let Some(k) = &o.unknown {
        if k == "eip7702Auth" {
            return Err(RpcError::from_denial(&bridle_common::payload::authorization_denied()));
        }
        return Err(RpcError::invalid(format!("unknown user operation field {k}")));
    }
    let chain_id = match (chain_id, opt_u64(&o.chain_id, "chainId")?) {
        (Some(a), Some(b)) if a != b => return Err(RpcError::invalid("chainId differs between params and userOp")),
        (a, b) => required(a.or(b), "chainId")?,
    };
    let need128 = |v: &Option<Scalar>, f: &str| required(opt_u128(v, f)?, f);
    Ok(UserOperationRequest {
        chain_id,
        entry_point,
        entry_point_version: match present(&o.entry_point_version).map(Scalar::as_str) {
            None => None,
            Some(Some("0.7" | "v0.7")) => Some(EntryPointVersion::V07),
            Some(Some("0.8" | "v0.8")) => Some(EntryPointVersion::V08),
            Some(_) => return Err(RpcError::invalid("entryPointVersion must be \"0.7\" or \"0.8\"")),
        },
        sender: required(opt_address(&o.sender, "sender")?, "sender")?,
        nonce: required(opt_u256(&o.nonce, "nonce")?, "nonce")?,
        factory: opt_address(&o.factory, "factory")?,
        factory_data: opt_bytes(&o.factory_data, "factoryData")?.unwrap_or_default(),
        init_code: opt_bytes(&o.init_code, "initCode")?,
        call_data: required(opt_bytes(&o.call_data, "callData")?, "callData")?,
        call_gas_limit: need128(&o.call_gas_limit, "callGasLimit")?,
        verification_gas_limit: need128(&o.verification_gas_limit, "verificationGasLimit")?,
        pre_verification_gas: required(opt_u256(&o.pre_verification_gas, "preVerificationGas")?, "preVerificationGas")?,
        max_fee_per_gas: need128(&o.max_fee_per_gas, "maxFeePerGas")?,
        max_priority_fee_per_gas: need128(&o.max_priority_fee_per_gas, "maxPriorityFeePerGas")?,
        paymaster: opt_address(&o.paymaster, "paymaster")?,
        paymaster_verification_gas_limit: opt_u128(
            &o.paymaster_verification_gas_limit,
            "paymasterVerificationGasLimit",
        )?
        .unwrap_or(0),
        paymaster_post_op_gas_limit: opt_u128(&o.paymaster_post_op_gas_limit, "paymasterPostOpGasLimit")?.unwrap_or(0),
        paymaster_data: opt_bytes(&o.paymaster_data, "paymasterData")?.unwrap_or_default(),
    })
}
