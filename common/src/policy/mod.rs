//! Policies: the document the owner signs, its TOML form, and the engine that enforces it.

pub mod calls;
pub mod compile;
mod compile_governance;
mod compile_offchain;
pub mod conformance;
pub mod doc;
pub mod engine;
pub mod escalate;
pub mod explain;
pub mod exposure;
pub mod file;
#[cfg(test)]
mod governance_tests;
pub mod index;
#[cfg(test)]
mod listing_tests;
pub mod offchain;
#[cfg(test)]
mod rate_history_tests;
mod redeem;
#[cfg(test)]
mod redeem_review_tests;
#[cfg(test)]
mod redeem_tests;
#[cfg(test)]
mod revoke_gas_tests;
pub mod section;
mod selectors;
mod signature;
#[cfg(test)]
mod signing_tests;
pub mod state;
pub mod strict_json;
#[cfg(test)]
mod tests;
mod unmetered;

/// The version of the decision rules: what this release's engine decides for each request
/// and the state each decision leaves (RULES.md). Bumped with every change that can make any
/// request decide otherwise or leave another state — then a cluster mixing images of two
/// versions refuses what decides until every node runs the same (ATTESTATION.md, "Cluster
/// and upgrades"). `tests/tests/rules_fingerprint.rs` fails when the decisions change and
/// this does not.
pub const RULES_VERSION: u32 = 1;

pub use compile::CompiledPolicy;
pub use doc::Policy;
pub use engine::{evaluate, evaluate_user_op, Charges, Context, Operation};
pub use escalate::escalation;
pub use offchain::{evaluate_message, evaluate_typed_data};
pub use state::Counters;
