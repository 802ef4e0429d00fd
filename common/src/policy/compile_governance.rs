//! Validation of a policy's AG-212 governance fields that need nothing compiled: exposure
//! ceilings (each needs a price table), the trip-wire's bounds and the release signers a
//! cluster may admit. Part of [`CompiledPolicy::compile`], which destructures the document
//! exhaustively.
//!
//! [`CompiledPolicy::compile`]: super::compile::CompiledPolicy::compile

use super::compile::invalid;
use super::doc::*;
use crate::error::Denial;

/// Ceilings, trip-wire and release signers (AG-212 4.4, 4.6; the cluster's admission).
pub(super) fn check_governance(doc: &Policy) -> Result<(), Denial> {
    let Policy {
        prices,
        exposure_ceiling,
        owner_exposure_ceiling,
        agent_exposure_ceiling,
        trip_wire,
        release_signers,
        ..
    } = doc;
    for (name, c) in [
        ("exposure_ceiling", exposure_ceiling),
        ("owner_exposure_ceiling", owner_exposure_ceiling),
        ("agent_exposure_ceiling", agent_exposure_ceiling),
    ] {
        if c.is_some() && prices.is_empty() {
            return Err(invalid(name, "an exposure ceiling needs a price table (prices): approvals are valued in USD"));
        }
    }
    if let Some(t) = trip_wire {
        let TripWire { denials, within } = t;
        if *denials == 0 || *denials > 10_000 {
            return Err(invalid("trip_wire.denials", "must be 1 to 10000"));
        }
        if *within == 0 || *within > 30 * 86_400 {
            return Err(invalid("trip_wire.within", "must be between 1 second and 30 days"));
        }
    }

    if release_signers.len() > MAX_RELEASE_SIGNERS {
        return Err(invalid(
            "release_signers",
            format!("{} release signers; at most {MAX_RELEASE_SIGNERS}", release_signers.len()),
        ));
    }
    for (i, signer) in release_signers.iter().enumerate() {
        // An unsigned image's PCR8 is all zeros: naming it would hand the key to every
        // unsigned image a cluster admits.
        if signer.is_zero() {
            return Err(invalid(
                format!("release_signers[{i}]"),
                "all zeros is the PCR8 of an unsigned image, not a release signer",
            ));
        }
        if release_signers[..i].contains(signer) {
            return Err(invalid(format!("release_signers[{i}]"), "listed twice"));
        }
    }
    Ok(())
}
