//! ERC-4337 packed user operations (R-SIGN-2), for EntryPoint v0.7 and v0.8: the request as
//! the enclave receives it, the user operation hash computed exactly as the entry point's
//! `getUserOpHash`, and the decoding of the account's `callData` into the inner calls the
//! policy checks.
//!
//! The enclave never signs a caller-supplied hash (R-TRUST-1): it packs the operation
//! from these fields and hashes it itself, with the entry point and chain id of the
//! request.
//!
//! What the session key signs: SimpleAccount v0.7 (`@account-abstraction/contracts`
//! 0.7.0, `SimpleAccount._validateSignature`) checks
//! `ECDSA.recover(MessageHashUtils.toEthSignedMessageHash(userOpHash), signature)`, so the
//! enclave signs the EIP-191 hash of the 32-byte userOpHash
//! (`keccak256("\x19Ethereum Signed Message:\n32" ‖ userOpHash)`).
//!
//! EntryPoint v0.8 (`@account-abstraction/contracts` 0.8.0) makes `getUserOpHash` an EIP-712
//! hash — domain `ERC4337`/`1`, the chain id and the entry point — of the same packed fields,
//! and SimpleAccount v0.8 checks `ECDSA.recover(userOpHash, signature)`: the key signs the
//! hash itself. An operation whose `initCode` carries v0.8's EIP-7702 marker hashes the
//! account's delegate, which only the chain knows; like every EIP-7702 authorization it is
//! never signed (R-SIGN-1).

use crate::error::{Denial, ErrorCode};
use crate::tx::{Call, Gas};
use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::{SolCall, SolValue};
use serde::{Deserialize, Serialize};

/// The canonical EntryPoint v0.7 address.
pub const ENTRY_POINT_V07: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");

/// The canonical EntryPoint v0.8 address.
pub const ENTRY_POINT_V08: Address = address!("4337084D9E255Ff0702461CF8895CE9E3b5Ff108");

/// Which EntryPoint an operation is for: it decides the hash and what the key signs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryPointVersion {
    #[serde(rename = "0.7")]
    V07,
    #[serde(rename = "0.8")]
    V08,
}

impl EntryPointVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryPointVersion::V07 => "v0.7",
            EntryPointVersion::V08 => "v0.8",
        }
    }
}

/// `typeHash` of EntryPoint v0.8's `PackedUserOperation` (UserOperationLib).
const PACKED_USEROP_TYPEHASH_STR: &str = "PackedUserOperation(address sender,uint256 nonce,bytes initCode,bytes callData,bytes32 accountGasLimits,uint256 preVerificationGas,bytes32 gasFees,bytes paymasterAndData)";

/// Most inner calls one user operation may make.
pub const MAX_INNER_CALLS: usize = 64;

/// A v0.7 or v0.8 user operation to sign, in its unpacked (RPC) form plus where it will run
/// (the two versions pack the same fields).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOperationRequest {
    /// The chain the entry point runs on (part of the hash).
    pub chain_id: u64,
    /// The entry point that will validate it (part of the hash); must be on the policy's list.
    pub entry_point: Address,
    /// Which EntryPoint version `entry_point` is; absent: v0.8 for the canonical v0.8
    /// address, v0.7 otherwise. The policy lists each entry point under its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point_version: Option<EntryPointVersion>,
    pub sender: Address,
    pub nonce: U256,
    /// Account factory (v0.7 RPC form); `factory_data` is its calldata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<Address>,
    #[serde(default, skip_serializing_if = "<[u8]>::is_empty")]
    pub factory_data: Bytes,
    /// Alternatively the packed `initCode` (factory ‖ factoryData); not with `factory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_code: Option<Bytes>,
    #[serde(default)]
    pub call_data: Bytes,
    pub call_gas_limit: u128,
    pub verification_gas_limit: u128,
    pub pre_verification_gas: U256,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: u128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paymaster: Option<Address>,
    #[serde(default)]
    pub paymaster_verification_gas_limit: u128,
    #[serde(default)]
    pub paymaster_post_op_gas_limit: u128,
    #[serde(default)]
    pub paymaster_data: Bytes,
}

alloy_sol_types::sol! {
    /// EntryPoint v0.7 `PackedUserOperation`.
    #[derive(Debug, PartialEq, Eq)]
    struct PackedUserOperation {
        address sender;
        uint256 nonce;
        bytes initCode;
        bytes callData;
        bytes32 accountGasLimits;
        uint256 preVerificationGas;
        bytes32 gasFees;
        bytes paymasterAndData;
        bytes signature;
    }
}

/// ERC-7579 `execute(bytes32 mode, bytes executionCalldata)`.
pub mod erc7579 {
    alloy_sol_types::sol! {
        #[derive(Debug, PartialEq, Eq)]
        struct Execution { address target; uint256 value; bytes callData; }
        function execute(bytes32 mode, bytes executionCalldata);
    }
}

/// SimpleAccount (eth-infinitism) `execute` and `executeBatch` shapes.
pub mod simple_account {
    alloy_sol_types::sol! {
        /// v0.6 and v0.7.
        function execute(address dest, uint256 value, bytes func);
        /// v0.7: an empty `value` array means no value.
        function executeBatch(address[] dest, uint256[] value, bytes[] func);
    }
    /// v0.6 `executeBatch(address[],bytes[])`.
    pub mod v06 {
        alloy_sol_types::sol! {
            function executeBatch(address[] dest, bytes[] func);
        }
    }
    /// v0.8 `BaseAccount.executeBatch(Call[])`.
    pub mod v08 {
        alloy_sol_types::sol! {
            #[derive(Debug, PartialEq, Eq)]
            struct Call { address target; uint256 value; bytes data; }
            function executeBatch(Call[] calls);
        }
    }
}

fn bad_calldata(reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::SelectorNotAllowed, "user_operations.call_data", reason)
}

fn bad_args(reason: impl Into<String>) -> Denial {
    Denial::rule(ErrorCode::ArgumentRejected, "user_operations.call_data", reason)
}

/// Two u128 packed into one word: `hi << 128 | lo`.
fn pack_u128(hi: u128, lo: u128) -> B256 {
    let mut w = [0u8; 32];
    w[..16].copy_from_slice(&hi.to_be_bytes());
    w[16..].copy_from_slice(&lo.to_be_bytes());
    B256::from(w)
}

impl UserOperationRequest {
    /// The factory, if the operation deploys its account.
    pub fn factory_address(&self) -> Result<Option<Address>, Denial> {
        match (&self.factory, &self.init_code) {
            (Some(_), Some(_)) => Err(Denial::malformed("give factory/factory_data or init_code, not both")),
            (Some(f), None) => Ok(Some(*f)),
            (None, Some(ic)) if ic.is_empty() => Ok(None),
            (None, Some(ic)) if ic.len() < 20 => {
                Err(Denial::malformed(format!("init_code of {} bytes is shorter than a factory address", ic.len())))
            }
            (None, Some(ic)) => Ok(Some(Address::from_slice(&ic[..20]))),
            (None, None) if !self.factory_data.is_empty() => Err(Denial::malformed("factory_data without a factory")),
            (None, None) => Ok(None),
        }
    }

    /// The packed `initCode`: factory ‖ factoryData, or empty.
    pub fn init_code(&self) -> Result<Bytes, Denial> {
        self.factory_address()?;
        Ok(match (&self.factory, &self.init_code) {
            (Some(f), _) => [f.as_slice(), self.factory_data.as_ref()].concat().into(),
            (None, Some(ic)) => ic.clone(),
            (None, None) => Bytes::new(),
        })
    }

    /// The packed `paymasterAndData`: paymaster ‖ uint128 verification gas ‖ uint128
    /// post-op gas ‖ paymasterData, or empty.
    pub fn paymaster_and_data(&self) -> Result<Bytes, Denial> {
        match self.paymaster {
            None => {
                if self.paymaster_verification_gas_limit != 0
                    || self.paymaster_post_op_gas_limit != 0
                    || !self.paymaster_data.is_empty()
                {
                    return Err(Denial::malformed("paymaster gas limits or data without a paymaster"));
                }
                Ok(Bytes::new())
            }
            Some(pm) => {
                let mut v = Vec::with_capacity(52 + self.paymaster_data.len());
                v.extend_from_slice(pm.as_slice());
                v.extend_from_slice(&self.paymaster_verification_gas_limit.to_be_bytes());
                v.extend_from_slice(&self.paymaster_post_op_gas_limit.to_be_bytes());
                v.extend_from_slice(&self.paymaster_data);
                Ok(v.into())
            }
        }
    }

    /// The operation as EntryPoint v0.7 receives it, with `signature`.
    pub fn packed(&self, signature: Bytes) -> Result<PackedUserOperation, Denial> {
        Ok(PackedUserOperation {
            sender: self.sender,
            nonce: self.nonce,
            initCode: self.init_code()?,
            callData: self.call_data.clone(),
            accountGasLimits: pack_u128(self.verification_gas_limit, self.call_gas_limit),
            preVerificationGas: self.pre_verification_gas,
            gasFees: pack_u128(self.max_priority_fee_per_gas, self.max_fee_per_gas),
            paymasterAndData: self.paymaster_and_data()?,
            signature,
        })
    }

    /// The entry point's version (see [`UserOperationRequest::entry_point_version`]).
    pub fn version(&self) -> EntryPointVersion {
        self.entry_point_version.unwrap_or(if self.entry_point == ENTRY_POINT_V08 {
            EntryPointVersion::V08
        } else {
            EntryPointVersion::V07
        })
    }

    /// `getUserOpHash` of the operation's entry point.
    ///
    /// v0.7: `keccak256(abi.encode(keccak256(UserOperationLib.encode(op)), entryPoint,
    /// chainId))` where `encode` hashes initCode, callData and paymasterAndData.
    ///
    /// v0.8: the EIP-712 hash `keccak256(0x1901 ‖ domainSeparator ‖ structHash)`, domain
    /// `{name: "ERC4337", version: "1", chainId, verifyingContract: entryPoint}`, struct hash
    /// `keccak256(abi.encode(PACKED_USEROP_TYPEHASH, sender, nonce, keccak(initCode),
    /// keccak(callData), accountGasLimits, preVerificationGas, gasFees,
    /// keccak(paymasterAndData)))`.
    pub fn hash(&self) -> Result<B256, Denial> {
        let p = self.packed(Bytes::new())?;
        let fields = (
            p.sender,
            p.nonce,
            keccak256(&p.initCode),
            keccak256(&p.callData),
            p.accountGasLimits,
            p.preVerificationGas,
            p.gasFees,
            keccak256(&p.paymasterAndData),
        );
        match self.version() {
            EntryPointVersion::V07 => {
                let inner = fields.abi_encode_params();
                Ok(keccak256((keccak256(inner), self.entry_point, U256::from(self.chain_id)).abi_encode_params()))
            }
            EntryPointVersion::V08 => {
                if is_eip7702_init_code(&p.initCode) {
                    return Err(Denial::rule(
                        ErrorCode::AuthorizationDenied,
                        "user_operations",
                        "an EntryPoint v0.8 operation with an EIP-7702 initCode hands the account to a delegate only the chain knows; never signed",
                    ));
                }
                let typehash = keccak256(PACKED_USEROP_TYPEHASH_STR.as_bytes());
                let (a, b, c, d, e, f, g, h) = fields;
                let struct_hash = keccak256((typehash, a, b, c, d, e, f, g, h).abi_encode_params());
                let domain = keccak256(
                    (
                        keccak256(
                            "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
                                .as_bytes(),
                        ),
                        keccak256("ERC4337".as_bytes()),
                        keccak256("1".as_bytes()),
                        U256::from(self.chain_id),
                        self.entry_point,
                    )
                        .abi_encode_params(),
                );
                Ok(keccak256([&[0x19u8, 0x01][..], domain.as_slice(), struct_hash.as_slice()].concat()))
            }
        }
    }

    /// The digest the session key signs for this operation's `userOpHash`: v0.7 — the
    /// EIP-191 hash of the 32-byte hash, as SimpleAccount v0.7 verifies
    /// (`toEthSignedMessageHash(userOpHash)`); v0.8 — the (EIP-712) hash itself, as
    /// SimpleAccount v0.8 verifies (`ECDSA.recover(userOpHash, signature)`).
    pub fn signing_digest(&self, user_op_hash: &B256) -> B256 {
        match self.version() {
            EntryPointVersion::V07 => alloy_primitives::eip191_hash_message(user_op_hash.as_slice()),
            EntryPointVersion::V08 => *user_op_hash,
        }
    }

    /// Gas terms: the sum of every gas limit (call, verification, pre-verification,
    /// paymaster verification and post-op) at `max_fee_per_gas` — the most the operation
    /// can cost, as the entry point computes its required prefund.
    pub fn gas(&self) -> Result<Gas, Denial> {
        let too_large =
            |what: String| Denial::rule(ErrorCode::GasCap, "gas.max_gas_limit", format!("{what} exceeds 2^64"));
        let pvg = u64::try_from(self.pre_verification_gas)
            .map_err(|_| too_large(format!("preVerificationGas {}", self.pre_verification_gas)))?;
        let total = [
            self.call_gas_limit,
            self.verification_gas_limit,
            pvg as u128,
            self.paymaster_verification_gas_limit,
            self.paymaster_post_op_gas_limit,
        ]
        .iter()
        .fold(U256::ZERO, |acc, &g| acc + U256::from(g));
        let gas_limit = u64::try_from(total).map_err(|_| too_large(format!("total gas limit {total}")))?;
        Ok(Gas {
            gas_limit,
            max_fee_per_gas: self.max_fee_per_gas,
            max_priority_fee_per_gas: self.max_priority_fee_per_gas,
            access_list_gas: 0,
            // Without a paymaster the account pays the prefund to the bundler, which may be
            // the agent itself (a review of 2026-12-07).
            paid_to_bundler: self.paymaster.is_none(),
        })
    }

    /// The inner calls the account will make (see [`decode_account_call`]).
    pub fn calls(&self) -> Result<Vec<Call>, Denial> {
        decode_account_call(&self.call_data)
    }
}

/// Whether `init_code` starts with EntryPoint v0.8's EIP-7702 marker (`0x7702` padded to 20
/// bytes).
fn is_eip7702_init_code(init_code: &[u8]) -> bool {
    init_code.len() >= 2 && {
        let mut first = [0u8; 20];
        let n = init_code.len().min(20);
        first[..n].copy_from_slice(&init_code[..n]);
        first[0] == 0x77 && first[1] == 0x02 && first[2..].iter().all(|&b| b == 0)
    }
}

/// Decode an account's `callData` into the calls it makes. Supported: ERC-7579
/// `execute(bytes32,bytes)` in single and batch call types (default exec type, default
/// mode selector), SimpleAccount `execute(address,uint256,bytes)`,
/// `executeBatch(address[],uint256[],bytes[])` (v0.7), `executeBatch(address[],bytes[])`
/// (v0.6) and `executeBatch((address,uint256,bytes)[])` (v0.8). Anything else — another
/// function, delegatecall or staticcall, an unknown mode, a non-canonical encoding — is
/// refused: the policy can only bound calls it can see.
pub fn decode_account_call(data: &[u8]) -> Result<Vec<Call>, Denial> {
    let Some(sel) = data.get(..4) else {
        return Err(bad_calldata(format!(
            "callData of {} bytes is not an account execute call; only ERC-7579 execute and SimpleAccount execute/executeBatch are decoded",
            data.len()
        )));
    };
    let sel: [u8; 4] = sel.try_into().unwrap_or_default();
    // A canonical encoding only: re-encoding what was decoded must give the same bytes, so
    // the calls the policy sees are exactly the calls the account decodes.
    use crate::abi_shape::{check_params, Shape};
    const CALL: Shape = Shape::Tuple(&[Shape::Word, Shape::Word, Shape::Bytes]);
    fn canonical<C: SolCall>(data: &[u8], name: &str) -> Result<C, Denial> {
        // The layout first: decoding aliased offsets would copy without bound.
        let shape: &'static [Shape] = match C::SELECTOR {
            erc7579::executeCall::SELECTOR => &[Shape::Word, Shape::Bytes],
            simple_account::executeCall::SELECTOR => &[Shape::Word, Shape::Word, Shape::Bytes],
            simple_account::executeBatchCall::SELECTOR => {
                &[Shape::Array(&Shape::Word), Shape::Array(&Shape::Word), Shape::Array(&Shape::Bytes)]
            }
            simple_account::v06::executeBatchCall::SELECTOR => {
                &[Shape::Array(&Shape::Word), Shape::Array(&Shape::Bytes)]
            }
            _ => &[Shape::Array(&CALL)],
        };
        check_params(shape, data.get(4..).unwrap_or_default())
            .map_err(|e| bad_args(format!("{name} arguments are not canonically ABI-encoded ({})", e.0)))?;
        let c = C::abi_decode(data).map_err(|e| bad_args(format!("{name} arguments do not decode: {e}")))?;
        if c.abi_encode() != data {
            return Err(bad_args(format!("{name} arguments are not canonically ABI-encoded")));
        }
        Ok(c)
    }
    let call = |to: Address, value: U256, data: Bytes| Call { to: Some(to), value, data };
    let calls = match sel {
        erc7579::executeCall::SELECTOR => {
            let c: erc7579::executeCall = canonical(data, "ERC-7579 execute")?;
            decode_erc7579_execution(&c.mode.0, &c.executionCalldata, "user_operations.call_data")?
        }
        simple_account::executeCall::SELECTOR => {
            let c: simple_account::executeCall = canonical(data, "SimpleAccount execute")?;
            vec![call(c.dest, c.value, c.func)]
        }
        simple_account::executeBatchCall::SELECTOR => {
            let c: simple_account::executeBatchCall = canonical(data, "SimpleAccount executeBatch")?;
            if c.dest.len() != c.func.len() || !(c.value.is_empty() || c.value.len() == c.func.len()) {
                return Err(bad_args("SimpleAccount executeBatch: array lengths differ"));
            }
            c.dest
                .iter()
                .zip(c.func)
                .enumerate()
                .map(|(i, (d, f))| call(*d, c.value.get(i).copied().unwrap_or(U256::ZERO), f))
                .collect()
        }
        simple_account::v06::executeBatchCall::SELECTOR => {
            let c: simple_account::v06::executeBatchCall = canonical(data, "SimpleAccount executeBatch")?;
            if c.dest.len() != c.func.len() {
                return Err(bad_args("SimpleAccount executeBatch: array lengths differ"));
            }
            c.dest.iter().zip(c.func).map(|(d, f)| call(*d, U256::ZERO, f)).collect()
        }
        simple_account::v08::executeBatchCall::SELECTOR => {
            let c: simple_account::v08::executeBatchCall = canonical(data, "executeBatch(Call[])")?;
            c.calls.into_iter().map(|x| call(x.target, x.value, x.data)).collect()
        }
        other => {
            return Err(bad_calldata(format!(
            "account function 0x{} is not decoded; only ERC-7579 execute and SimpleAccount execute/executeBatch are",
            hex::encode(other)
        )))
        }
    };
    if calls.is_empty() {
        return Err(bad_args("the batch makes no call"));
    }
    if calls.len() > MAX_INNER_CALLS {
        return Err(Denial::new(
            ErrorCode::TooLarge,
            format!("{} inner calls; at most {MAX_INNER_CALLS}", calls.len()),
        ));
    }
    Ok(calls)
}

/// Decode an ERC-7579 execution — `mode` and `executionCalldata`, as an account's
/// `execute(bytes32,bytes)` and a DeleGator's `executeFromExecutor(bytes32,bytes)` take them —
/// into its calls. Only the default mode selector and payload, single and batch call types
/// and the default exec type are decoded; a denial names `rule`.
pub fn decode_erc7579_execution(mode: &[u8; 32], ec: &[u8], rule: &str) -> Result<Vec<Call>, Denial> {
    let bad = |reason: String| Denial::rule(ErrorCode::ArgumentRejected, rule, reason);
    let call = |to: Address, value: U256, data: Bytes| Call { to: Some(to), value, data };
    let (call_type, exec_type) = (mode[0], mode[1]);
    if mode[2..].iter().any(|&b| b != 0) {
        return Err(bad(format!(
            "ERC-7579 mode 0x{} uses a mode selector or payload; only the default mode is decoded",
            hex::encode(mode)
        )));
    }
    match exec_type {
        0x00 => {}
        // Review finding 8: in try mode a failing call is skipped, so a trailing
        // `approve(spender, 0)` that fails would leave the approval live while the
        // policy counted it revoked.
        0x01 => {
            return Err(bad(
                "ERC-7579 try exec type: a failing call would be skipped (a trailing approve(spender, 0) could fail and leave the approval live); only the default exec type is signed".into(),
            ))
        }
        t => return Err(bad(format!("ERC-7579 exec type 0x{t:02x} is unknown"))),
    }
    match call_type {
        0x00 => {
            if ec.len() < 52 {
                return Err(bad("ERC-7579 single execution is shorter than target ‖ value".into()));
            }
            Ok(vec![call(
                Address::from_slice(&ec[..20]),
                U256::from_be_slice(&ec[20..52]),
                Bytes::copy_from_slice(&ec[52..]),
            )])
        }
        0x01 => {
            use crate::abi_shape::{check_params, Shape};
            const EXECUTION: Shape = Shape::Tuple(&[Shape::Word, Shape::Word, Shape::Bytes]);
            check_params(&[Shape::Array(&EXECUTION)], ec)
                .map_err(|e| bad(format!("ERC-7579 batch is not canonically ABI-encoded ({})", e.0)))?;
            let execs = <Vec<erc7579::Execution>>::abi_decode(ec)
                .map_err(|e| bad(format!("ERC-7579 batch does not decode: {e}")))?;
            if execs.abi_encode() != ec {
                return Err(bad("ERC-7579 batch is not canonically ABI-encoded".into()));
            }
            Ok(execs.into_iter().map(|x| call(x.target, x.value, x.callData)).collect())
        }
        0xfe => Err(bad("ERC-7579 staticcall mode is not signed".into())),
        0xff => Err(bad("ERC-7579 delegatecall mode runs foreign code as the account; never signed".into())),
        t => Err(bad(format!("ERC-7579 call type 0x{t:02x} is unknown"))),
    }
}

/// Build ERC-7579 and SimpleAccount callData (for clients and tests).
pub mod encode {
    use super::*;

    /// SimpleAccount `execute(dest, value, func)`.
    pub fn simple_execute(dest: Address, value: U256, func: Bytes) -> Bytes {
        simple_account::executeCall { dest, value, func }.abi_encode().into()
    }

    /// SimpleAccount v0.7 `executeBatch(dest[], value[], func[])`.
    pub fn simple_execute_batch(calls: &[(Address, U256, Bytes)]) -> Bytes {
        simple_account::executeBatchCall {
            dest: calls.iter().map(|c| c.0).collect(),
            value: calls.iter().map(|c| c.1).collect(),
            func: calls.iter().map(|c| c.2.clone()).collect(),
        }
        .abi_encode()
        .into()
    }

    /// SimpleAccount v0.8 (`BaseAccount`) `executeBatch(Call[])`.
    pub fn simple_v08_execute_batch(calls: &[(Address, U256, Bytes)]) -> Bytes {
        let calls = calls
            .iter()
            .map(|(target, value, data)| simple_account::v08::Call {
                target: *target,
                value: *value,
                data: data.clone(),
            })
            .collect();
        simple_account::v08::executeBatchCall { calls }.abi_encode().into()
    }

    /// ERC-7579 `execute` in single mode: `abi.encodePacked(target, value, callData)`.
    pub fn erc7579_single(target: Address, value: U256, data: &[u8]) -> Bytes {
        let ec = [target.as_slice(), &value.to_be_bytes::<32>(), data].concat();
        erc7579::executeCall { mode: B256::ZERO, executionCalldata: ec.into() }.abi_encode().into()
    }

    /// ERC-7579 `execute` in batch mode: `abi.encode(Execution[])`.
    pub fn erc7579_batch(calls: &[(Address, U256, Bytes)]) -> Bytes {
        let execs: Vec<erc7579::Execution> =
            calls.iter().map(|c| erc7579::Execution { target: c.0, value: c.1, callData: c.2.clone() }).collect();
        let mut mode = [0u8; 32];
        mode[0] = 0x01;
        erc7579::executeCall { mode: B256::from(mode), executionCalldata: execs.abi_encode().into() }
            .abi_encode()
            .into()
    }
}

#[cfg(test)]
#[path = "userop_tests.rs"]
mod tests;
