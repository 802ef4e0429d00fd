//! ERC-4337 v0.7 packed user operations (R-SIGN-2): the request as the enclave receives
//! it, the user operation hash computed exactly as EntryPoint v0.7 `getUserOpHash`, and
//! the decoding of the account's `callData` into the inner calls the policy checks.
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

use crate::error::{Denial, ErrorCode};
use crate::tx::{Call, Gas};
use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::{SolCall, SolValue};
use serde::{Deserialize, Serialize};

/// The canonical EntryPoint v0.7 address.
pub const ENTRY_POINT_V07: Address = address!("0000000071727De22E5E9d8BAf0edAc6f37da032");

/// Most inner calls one user operation may make.
pub const MAX_INNER_CALLS: usize = 64;

/// A v0.7 user operation to sign, in its unpacked (RPC) form plus where it will run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserOperationRequest {
    /// The chain the entry point runs on (part of the hash).
    pub chain_id: u64,
    /// The entry point that will validate it (part of the hash); must be on the policy's list.
    pub entry_point: Address,
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

    /// `getUserOpHash` of EntryPoint v0.7:
    /// `keccak256(abi.encode(keccak256(UserOperationLib.encode(op)), entryPoint, chainId))`
    /// where `encode` hashes initCode, callData and paymasterAndData.
    pub fn hash(&self) -> Result<B256, Denial> {
        let p = self.packed(Bytes::new())?;
        let inner = (
            p.sender,
            p.nonce,
            keccak256(&p.initCode),
            keccak256(&p.callData),
            p.accountGasLimits,
            p.preVerificationGas,
            p.gasFees,
            keccak256(&p.paymasterAndData),
        )
            .abi_encode_params();
        Ok(keccak256((keccak256(inner), self.entry_point, U256::from(self.chain_id)).abi_encode_params()))
    }

    /// The digest the session key signs: the EIP-191 hash of the 32-byte userOpHash, as
    /// SimpleAccount v0.7 verifies (`toEthSignedMessageHash(userOpHash)`).
    pub fn signing_digest(user_op_hash: &B256) -> B256 {
        alloy_primitives::eip191_hash_message(user_op_hash.as_slice())
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
        })
    }

    /// The inner calls the account will make (see [`decode_account_call`]).
    pub fn calls(&self) -> Result<Vec<Call>, Denial> {
        decode_account_call(&self.call_data)
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
    fn canonical<C: SolCall>(data: &[u8], name: &str) -> Result<C, Denial> {
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
            let mode = c.mode.0;
            let (call_type, exec_type) = (mode[0], mode[1]);
            if mode[2..].iter().any(|&b| b != 0) {
                return Err(bad_args(format!(
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
                    return Err(bad_args(
                        "ERC-7579 try exec type: a failing call would be skipped (a trailing approve(spender, 0) could fail and leave the approval live); only the default exec type is signed",
                    ))
                }
                t => return Err(bad_args(format!("ERC-7579 exec type 0x{t:02x} is unknown"))),
            }
            let ec = c.executionCalldata.as_ref();
            match call_type {
                0x00 => {
                    if ec.len() < 52 {
                        return Err(bad_args("ERC-7579 single execution is shorter than target ‖ value"));
                    }
                    vec![call(
                        Address::from_slice(&ec[..20]),
                        U256::from_be_slice(&ec[20..52]),
                        Bytes::copy_from_slice(&ec[52..]),
                    )]
                }
                0x01 => {
                    let execs = <Vec<erc7579::Execution>>::abi_decode(ec)
                        .map_err(|e| bad_args(format!("ERC-7579 batch does not decode: {e}")))?;
                    if execs.abi_encode() != ec {
                        return Err(bad_args("ERC-7579 batch is not canonically ABI-encoded"));
                    }
                    execs.into_iter().map(|x| call(x.target, x.value, x.callData)).collect()
                }
                0xfe => return Err(bad_args("ERC-7579 staticcall mode is not signed")),
                0xff => {
                    return Err(bad_args("ERC-7579 delegatecall mode runs foreign code as the account; never signed"))
                }
                t => return Err(bad_args(format!("ERC-7579 call type 0x{t:02x} is unknown"))),
            }
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
mod tests {
    use super::*;
    use alloy_dyn_abi::DynSolValue;

    fn op() -> UserOperationRequest {
        UserOperationRequest {
            chain_id: 31337,
            entry_point: ENTRY_POINT_V07,
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
        let c =
            simple_account::executeBatchCall { dest: vec![a], value: vec![U256::ZERO; 2], func: vec![Bytes::new()] };
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
}
