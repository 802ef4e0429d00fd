//! A call on a cluster node's host ([`EnclaveClient::call`] with a [`ClusterLink`]): to this
//! host's own node, or to the member a node names as leader, within the call's time limit.

use super::*;

impl EnclaveClient {
    pub(super) async fn call_routed(
        &self,
        link: &ClusterLink,
        call: Call,
        limit: Duration,
    ) -> Result<Reply, ClientError> {
        let started = Instant::now();
        // No new try after `deadline`; an exchange (or a redirect to the leader) may run
        // until `hard`.
        let (deadline, hard) = (started + limit, started + self.cfg.call_timeout);
        let mut target: Option<String> = None;
        // An enclave's own `unavailable` (and its reason) outranks a peer host that could
        // not be reached: it is what the caller gets if time runs out on the latter (never
        // on a timeout, whose call may have been committed).
        let mut heard: Option<Result<Reply, ClientError>> = None;
        // Whether a pointer to the leader was followed after `deadline` (one is).
        let mut followed_late = false;
        // Pointers followed: the first two at once, later ones after a pause (a review of
        // 2026-12-06: a peer pointing at itself kept one call forwarded with no pause,
        // thousands of times, until the call timeout).
        let mut pointers = 0u32;
        loop {
            let left = hard.saturating_duration_since(Instant::now());
            let from_peer = target.is_some();
            let r = match &target {
                None => self.call_inner(call.clone()).await,
                Some(url) => link.forward(url, &call, left.max(Duration::from_millis(100))).await,
            };
            let pause = match &r {
                Ok(Reply::NotLeader(nl)) => {
                    // This host's own node names the leader from its membership; a peer host
                    // may name any URL, so its pointer is followed only to a known member
                    // (a review of 2026-12-06). A peer that names none (or another URL) is
                    // passed by for the next member, not for this host's own node (which
                    // may be down: the same peer was then asked again and again).
                    let mut pointed = false;
                    target = match nl.leader_url.clone() {
                        // This host's own node leads (just elected, say): ask it.
                        Some(u) if link.is_me(&u) => None,
                        Some(u) if !from_peer || link.is_member(&u) => {
                            pointed = true;
                            Some(u)
                        }
                        _ if from_peer => link.next_member(target.as_deref()),
                        _ => None,
                    };
                    pointers += u32::from(pointed);
                    // No leader known yet (an election): ask again shortly.
                    if pointed && pointers <= 2 {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(100)
                    }
                }
                Err(ClientError::Unavailable(_)) | Err(ClientError::Timeout(_)) => {
                    target = link.next_member(target.as_deref());
                    Duration::from_millis(100)
                }
                Err(ClientError::Denied(d)) if d.code == ErrorCode::Unavailable => {
                    target = link.next_member(target.as_deref());
                    Duration::from_millis(100)
                }
                _ => return r,
            };
            let r = match r {
                // The first one heard (a commit that timed out says so first).
                Err(ClientError::Denied(_)) => {
                    heard.get_or_insert_with(|| r.clone());
                    r
                }
                // Not a timeout: its call's outcome is unknown (it may have been committed).
                // (A peer host's failures are all `Unavailable`, as before: every answer
                // here means "ask again with the same stamp", which is idempotent.)
                Err(ClientError::Unavailable(_)) if heard.is_some() => heard.clone().unwrap_or(r),
                r => r,
            };
            let redirected = matches!(r, Ok(Reply::NotLeader(_))) && target.is_some();
            let late = Instant::now() + pause >= deadline;
            if late && (!redirected || followed_late || Instant::now() + pause >= hard) {
                return match r {
                    // A pointer last, after a node's own refusal: that refusal (a peer
                    // pointing back at this host's node, which leads and answered it, would
                    // otherwise turn "may not hold this session's key" into "no leader").
                    Ok(Reply::NotLeader(_)) => heard.unwrap_or_else(|| {
                        Err(ClientError::Denied(Denial::new(
                            ErrorCode::Unavailable,
                            "the cluster has no leader now (an election, or no majority); nothing was signed; ask \
                             again",
                        )))
                    }),
                    other => other,
                };
            }
            followed_late |= late;
            tokio::time::sleep(pause).await;
        }
    }
}
