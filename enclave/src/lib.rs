//! Bridle's enclave: session keys generated inside, policy enforced in the signing path,
//! one socket. This crate has no HTTP, database or outbound network dependency: the trust
//! boundary is visible in its dependency list.

pub mod apply;
pub mod attest;
pub mod audit;
pub mod clock;
pub mod cluster;
pub mod keys;
pub mod lanes;
pub mod memory;
pub mod server;
pub mod service;
pub mod session;

pub use service::{Attestor, Config, Enclave};
