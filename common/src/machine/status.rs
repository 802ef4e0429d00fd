//! A session's facts as the owner sees them: state, spend against each cap, the allowance
//! registry and exposure, pending requests.

use super::Machine;
use crate::allowance::view::view;
use crate::ledger::LedgerKey;
use crate::period::Period;
use crate::policy::compile::AssetRef;
use crate::policy::exposure::exposure_now;
use crate::policy::Counters;
use crate::protocol::{CapStatus, ExposureStatus, PendingStatus, RateStatus, SessionStatus};
use crate::units::format_decimal;
use alloy_primitives::B256;

/// The most a status copies of its held requests' payloads together, by their CBOR size:
/// up to 16 requests of up to a frame each would otherwise be copied into every status
/// being answered. The payload a status is asked for (`held`) is shown whatever its size.
pub const STATUS_PAYLOAD_BYTES: usize = 256 << 10;

impl Machine {
    /// The session's status at `clock` (read-only: the session time is not advanced). The
    /// held requests' payloads are shown in digest order while they fit in
    /// [`STATUS_PAYLOAD_BYTES`] — `held`'s first, whatever its size — and the others are
    /// marked `payload_omitted`.
    pub fn status(&self, clock: u64, held: Option<B256>) -> SessionStatus {
        let t = self.time_at(clock);
        let p = &self.policy;
        let anchor = self.facts.anchor;
        let ledger = &self.counters.ledger;
        let mut caps = Vec::new();
        for (i, l) in p.doc.limits.iter().enumerate() {
            let a = p.limit_assets[i];
            let (sym, dec) = p.unit(a);
            let idx = l.period.index(anchor, t);
            caps.push(CapStatus {
                rule: format!("limits[{i}]"),
                what: if l.period == Period::Session {
                    format!("{sym} per session")
                } else {
                    format!("{sym} per {}", l.period)
                },
                spent: ledger.spent(Counters::key_of(p, a), l.period, anchor, t),
                cap: l.max,
                decimals: dec,
                symbol: sym.to_string(),
                resets_at: (l.period != Period::Session).then(|| l.period.end(anchor, idx)),
            });
        }
        for (i, st) in p.doc.streams.iter().enumerate() {
            let a = p.stream_assets[i];
            let (sym, dec) = p.unit(a);
            caps.push(CapStatus {
                rule: format!("streams[{i}]"),
                what: format!(
                    "{sym} stream ({} per {} s, accrued continuously)",
                    format_decimal(st.rate, dec),
                    st.every
                ),
                spent: ledger.spent(Counters::key_of(p, a), Period::Session, anchor, t),
                cap: st.max,
                decimals: dec,
                symbol: sym.to_string(),
                resets_at: None,
            });
        }
        for (i, g) in p.doc.gas.cost_limits.iter().enumerate() {
            let idx = g.period.index(anchor, t);
            caps.push(CapStatus {
                rule: format!("gas.cost_limits[{i}]"),
                what: format!("gas cost per {}", g.period),
                spent: ledger.spent(LedgerKey::GasCost, g.period, anchor, t),
                cap: g.max,
                decimals: 18,
                symbol: p.unit(AssetRef::Native).0.to_string(),
                resets_at: (g.period != Period::Session).then(|| g.period.end(anchor, idx)),
            });
        }
        let x = exposure_now(p, &self.counters.allowances, t);
        let asked = held.and_then(|d| self.pending.get(&d)).map_or(0, |q| q.cbor);
        let mut room = STATUS_PAYLOAD_BYTES.saturating_sub(asked);
        let pending = self
            .pending
            .iter()
            .map(|(digest, q)| {
                let shown = Some(*digest) == held || {
                    let fits = q.cbor <= room;
                    if fits {
                        room -= q.cbor;
                    }
                    fits
                };
                (digest, q, shown)
            })
            .map(|(digest, q, shown)| PendingStatus {
                digest: *digest,
                kind: q.payload.kind_name().to_string(),
                created_at: q.created_at,
                expires_at: q.expires_at,
                state: match (&q.signed, t < q.expires_at) {
                    (_, false) => "expired",
                    (Some(_), true) => "signed",
                    (None, true) if q.denied_at.is_some() => "denied",
                    (None, true) => "waiting",
                }
                .to_string(),
                reason: q.reason.clone(),
                rule: q.rule.clone(),
                payload: shown.then(|| q.payload.clone()),
                payload_omitted: !shown,
            })
            .collect();
        SessionStatus {
            session: self.facts.address,
            owner: self.facts.owner,
            agent: self.facts.agent,
            policy_hash: p.hash,
            state: self.state(t),
            created_at: self.facts.created_at,
            valid_after: p.doc.valid_after,
            valid_until: p.doc.valid_until.unwrap_or(0),
            uses: self.counters.uses,
            uses_left: p.doc.quota.map(|q| q.saturating_sub(self.counters.uses)),
            caps,
            suspended_reason: self.suspended.clone(),
            allowances: view(&self.counters.allowances, t),
            exposure: Box::new(ExposureStatus { usd: x.usd, ceiling: p.doc.exposure_ceiling, unpriced: x.unpriced }),
            pending,
            time: t,
            anchor,
            next_nonces: self.counters.allowances.next_nonces(),
            rate_limits: p
                .doc
                .rate_limits
                .iter()
                .enumerate()
                .map(|(i, r)| RateStatus {
                    rule: format!("rate_limits[{i}]"),
                    max: r.max,
                    window: r.window,
                    used: self.counters.recent_within(t, r.window),
                })
                .collect(),
        }
    }
}
