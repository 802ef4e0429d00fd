//! What `send_transaction` takes from its node (`--rpc`): the chain and the fees. The node
//! is not the owner's: it may be a public endpoint, intercepted, or wrong. Its chain id must
//! be the one `--chain-id` names (when given), and the fees it suggests are held to this
//! server's caps (`--max-fee-gwei`, `--max-priority-fee-gwei`) — within the policy, which
//! may cap no gas at all, a node's fees would otherwise be paid as it names them (a review
//! of 2026-12-06).

use anyhow::{bail, Result};

/// One gwei, in wei.
const GWEI: u128 = 1_000_000_000;

/// The bounds on a node's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// The chain payments are made on; `None`: the node's, whichever the policy allows.
    pub chain_id: Option<u64>,
    /// The highest max fee per gas (or gas price) signed, wei.
    pub max_fee_per_gas: u128,
    /// The highest priority fee per gas signed, wei: a node's suggestion above it is lowered.
    pub max_priority_fee_per_gas: u128,
    /// Legacy gas pricing is allowed (a chain without EIP-1559): otherwise a node whose
    /// block shows no base fee is refused, since a gas price is paid whole.
    pub legacy: bool,
}

impl NodeLimits {
    /// From the command line: gwei.
    pub fn new(chain_id: Option<u64>, max_fee_gwei: u64, max_priority_fee_gwei: u64, legacy: bool) -> NodeLimits {
        NodeLimits {
            chain_id,
            max_fee_per_gas: u128::from(max_fee_gwei) * GWEI,
            max_priority_fee_per_gas: u128::from(max_priority_fee_gwei) * GWEI,
            legacy,
        }
    }

    /// The chain the node says it is on, if it is the one pinned.
    pub fn chain(&self, node_says: u64) -> Result<u64> {
        match self.chain_id {
            Some(pinned) if pinned != node_says => {
                bail!("the node (--rpc) is on chain {node_says}, not chain {pinned} (--chain-id): nothing was signed")
            }
            _ => Ok(node_says),
        }
    }

    /// EIP-1559 fees from the node's base fee and suggested tip: `(max_fee, priority_fee)`.
    /// The tip is lowered to its cap; the max fee is twice the base fee plus the tip, at most
    /// the cap; refused when the base fee and the tip alone are above it.
    pub fn eip1559(&self, base_fee: u128, suggested_tip: u128) -> Result<(u128, u128)> {
        let tip = suggested_tip.min(self.max_priority_fee_per_gas);
        if base_fee.saturating_add(tip) > self.max_fee_per_gas {
            bail!(
                "the node's base fee ({}) is above this server's cap of {} per gas (--max-fee-gwei): nothing was \
                 signed; wait for lower fees or ask the operator",
                gwei(base_fee),
                gwei(self.max_fee_per_gas)
            );
        }
        Ok((base_fee.saturating_mul(2).saturating_add(tip).min(self.max_fee_per_gas), tip))
    }

    /// A legacy gas price from the node, refused above the cap.
    pub fn gas_price(&self, node_says: u128) -> Result<u128> {
        if node_says > self.max_fee_per_gas {
            bail!(
                "the node's gas price ({}) is above this server's cap of {} per gas (--max-fee-gwei): nothing was \
                 signed",
                gwei(node_says),
                gwei(self.max_fee_per_gas)
            );
        }
        Ok(node_says)
    }
}

fn gwei(wei: u128) -> String {
    bridle_common::units::format_decimal(alloy_primitives::U256::from(wei), 9) + " gwei"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_on_another_chain_is_refused_when_one_is_pinned() {
        assert_eq!(NodeLimits::new(None, 1000, 10, false).chain(8453).unwrap(), 8453);
        assert_eq!(NodeLimits::new(Some(1), 1000, 10, false).chain(1).unwrap(), 1);
        let e = NodeLimits::new(Some(1), 1000, 10, false).chain(8453).unwrap_err().to_string();
        assert!(e.contains("chain 8453, not chain 1") && e.contains("nothing was signed"), "{e}");
    }

    #[test]
    fn a_nodes_fees_are_held_to_the_caps() {
        let l = NodeLimits::new(None, 100, 2, false);
        // Ordinary fees pass as the node names them.
        assert_eq!(l.eip1559(10 * GWEI, GWEI).unwrap(), (21 * GWEI, GWEI));
        // A tip of 10 000 gwei is lowered to the cap.
        assert_eq!(l.eip1559(10 * GWEI, 10_000 * GWEI).unwrap(), (22 * GWEI, 2 * GWEI));
        // Twice the base fee above the cap: the max fee is the cap.
        assert_eq!(l.eip1559(60 * GWEI, GWEI).unwrap(), (100 * GWEI, GWEI));
        // The base fee alone above it: refused.
        let e = l.eip1559(100 * GWEI, GWEI).unwrap_err().to_string();
        assert!(e.contains("100 gwei") && e.contains("--max-fee-gwei"), "{e}");
        assert!(l.eip1559(u128::MAX, u128::MAX).is_err());
        assert_eq!(l.gas_price(30 * GWEI).unwrap(), 30 * GWEI);
        assert!(l.gas_price(101 * GWEI).is_err());
    }
}
