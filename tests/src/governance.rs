//! Delegated-spend governance (AG-212) for tests: owner actions on a session, the
//! allowance registry, the revocation sweep and escalations.

use super::*;

/// An owner action on `session` (any action name), ready to sign.
pub fn owner_action(act: &str, enclave: Address, session: Address, agent: Address, subject: B256) -> OwnerAction {
    OwnerAction {
        action: act.into(),
        enclave,
        session,
        agent,
        policyHash: B256::ZERO,
        subject,
        nonce: Actor::next_nonce(),
    }
}

/// Sweep terms for one chain: `nonce` first, 2 gwei max fee, 1 gwei priority, 100 000 gas.
pub fn sweep_terms(chain_id: u64, nonce: u64) -> SweepTerms {
    SweepTerms {
        chain_id,
        nonce,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        gas_limit: 100_000,
    }
}

impl Stack {
    /// Ask for a signature of any payload as `g.agent`, stamped at `ts` (for a moved
    /// enclave clock).
    pub async fn sign_payload_at(&self, g: &Granted, payload: SignPayload, ts: u64) -> (u16, serde_json::Value) {
        let stamp = g.agent.stamp_payload(&g.enclave_pk, g.session, &payload, ts);
        self.post("/v1/sign", &SignRequest { session: g.session, payload, stamp }).await
    }

    /// `GET /v1/sessions/{s}/allowances`.
    pub async fn allowances(&self, g: &Granted) -> serde_json::Value {
        let (c, v) = self.get(&format!("/v1/sessions/{}/allowances", g.session)).await;
        assert_eq!(c, 200, "{v}");
        v
    }

    /// `POST /v1/sessions/{s}/sweep`, signed by the owner when `owner_signed`.
    pub async fn sweep(&self, g: &Granted, terms: Vec<SweepTerms>, owner_signed: bool) -> (u16, serde_json::Value) {
        self.sweep_with(g, terms, vec![], owner_signed).await
    }

    /// `POST /v1/sessions/{s}/sweep` with transaction and account terms, signed by the owner
    /// when `owner_signed`.
    pub async fn sweep_with(
        &self,
        g: &Granted,
        terms: Vec<SweepTerms>,
        accounts: Vec<bridle_common::protocol::AccountSweepTerms>,
        owner_signed: bool,
    ) -> (u16, serde_json::Value) {
        let mut body = Sweep { session: g.session, terms, accounts, auth: None };
        if owner_signed {
            let st = self.status().await;
            let msg = owner_action(
                bridle_common::owner::action::SWEEP,
                st.identity_address,
                g.session,
                g.agent.address,
                body.terms_digest(),
            );
            let msg = OwnerAction { nonce: self.enclave.next_nonce(), ..msg };
            body.auth = Some(g.owner.sign_owner(&msg));
        }
        self.post(&format!("/v1/sessions/{}/sweep", g.session), &body).await
    }

    /// The owner approves the pending request `digest` (`POST /v1/sessions/{s}/approve`).
    pub async fn approve_pending(&self, g: &Granted, digest: B256) -> (u16, serde_json::Value) {
        let st = self.status().await;
        let msg = owner_action(
            bridle_common::owner::action::APPROVE_PENDING,
            st.identity_address,
            g.session,
            g.agent.address,
            digest,
        );
        let msg = OwnerAction { nonce: self.enclave.next_nonce(), ..msg };
        let body = ApprovePending { auth: g.owner.sign_owner(&msg), session: g.session, digest };
        self.post(&format!("/v1/sessions/{}/approve", g.session), &body).await
    }

    /// The owner revokes the session.
    pub async fn revoke(&self, g: &Granted) -> (u16, serde_json::Value) {
        let st = self.status().await;
        let msg = owner_action(
            bridle_common::owner::action::REVOKE,
            st.identity_address,
            g.session,
            g.agent.address,
            B256::ZERO,
        );
        let msg = OwnerAction { nonce: self.enclave.next_nonce(), ..msg };
        self.post(
            &format!("/v1/sessions/{}/revoke", g.session),
            &Revoke { auth: g.owner.sign_owner(&msg), session: g.session },
        )
        .await
    }

    /// The owner re-signs the session's policy (this lifts a trip-wire suspension).
    pub async fn update_policy(&self, g: &Granted, policy: &Policy) -> (u16, serde_json::Value) {
        let st = self.status().await;
        let msg = OwnerAction {
            action: bridle_common::owner::action::UPDATE_POLICY.into(),
            enclave: st.identity_address,
            session: g.session,
            agent: g.agent.address,
            policyHash: policy.hash(),
            subject: B256::ZERO,
            nonce: self.enclave.next_nonce(),
        };
        let body = UpdatePolicy { auth: g.owner.sign_owner(&msg), session: g.session, policy: policy.clone() };
        self.post(&format!("/v1/sessions/{}/policy", g.session), &body).await
    }
}

/// An entry of an allowances reply for (token, spender), if any.
pub fn allowance_of(v: &serde_json::Value, token: Address, spender: Address) -> Option<&serde_json::Value> {
    v["allowances"].as_array()?.iter().find(|e| {
        serde_json::from_value::<Address>(e["token"].clone()).ok() == Some(token)
            && serde_json::from_value::<Address>(e["spender"].clone()).ok() == Some(spender)
    })
}

/// A JSON U256 (hex or decimal string, or number).
pub fn u256_of(v: &serde_json::Value) -> U256 {
    serde_json::from_value(v.clone()).unwrap_or_else(|_| panic!("not a U256: {v}"))
}
