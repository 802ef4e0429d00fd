//! Bridle's shared core: wire protocol, policy types and the policy engine.
//!
//! Pure: no network, no clock of its own, no randomness. The enclave, host and CLI all use
//! these types, so what the CLI simulates is exactly what the enclave enforces.

pub mod abi_shape;
pub mod address;
pub mod allowance;
pub mod audit;
pub mod bounds;
pub mod cluster;
pub mod decode_bound;
pub mod delegation;
pub mod erc7715;
pub mod error;
pub mod frame;
pub mod ledger;
pub mod machine;
pub mod owner;
pub mod payload;
pub mod period;
pub mod policy;
pub mod protocol;
pub mod quote;
pub mod receipt;
pub mod stamp;
pub mod sweep_check;
pub mod tx;
pub mod typed;
pub mod units;
pub mod userop;

pub use error::{Denial, ErrorCode};
