//! Hold mode: a tool call that needs a human waits (up to
//! `approvals.hold_secs`) for an operator instead of failing now, and is
//! judged again once every approval it waits on is decided.

use super::context::Ctx;
use super::errors::Denial;
use super::request_body::Judging;
use super::Gateway;
use crate::datapath::dialect::ErrorKind;
use crate::datapath::enforce::{RequestAction, StageReport};
use crate::datapath::inspect_slots::Slot;
use crate::decision::approvals::ApprovalStatus;
use pingora::proxy::Session;
use std::time::Duration;

/// How a hold ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// Every approval was granted: re-judge, which releases the call.
    Approved,
    /// An operator denied (or the approval was spent or expired).
    Decided,
    TimedOut,
    ClientGone,
}

impl Held {
    /// Why the call stays refused without being judged again; `None` when
    /// it is judged again (the gate then reports the outcome).
    fn note(self, limit: Duration) -> Option<String> {
        match self {
            Held::Approved | Held::Decided => None,
            Held::TimedOut => Some(format!(
                "No operator decision within {} s; the approval stays pending.",
                limit.as_secs()
            )),
            Held::ClientGone => Some(
                "The client went away while the call was held; nothing was forwarded.".to_string(),
            ),
        }
    }
}

/// Only a denial that asks for an approval can wait for a human (and only
/// when its session holds such calls and an approval is pending).
fn asks_for_approval(action: &RequestAction) -> bool {
    matches!(action, RequestAction::Deny { kind, .. } if *kind == ErrorKind::ApprovalRequired)
}

/// What one approval's status means for the hold: `None` when it was
/// granted (on to the next one).
fn settled(status: ApprovalStatus) -> Option<Held> {
    match status {
        ApprovalStatus::Approved => None,
        ApprovalStatus::Pending => Some(Held::TimedOut),
        _ => Some(Held::Decided),
    }
}

impl Gateway {
    /// Hold a call that needs an operator, then judge it again; any other
    /// judgement comes back as it was. `slot` is let go while a human
    /// decides (nobody inspects meanwhile).
    pub(super) async fn hold_if_needed(
        &self,
        session: &mut Session,
        ctx: &mut Ctx,
        body: &Judging<'_>,
        slot: &mut Option<Slot>,
        judged: (RequestAction, StageReport),
    ) -> Result<(RequestAction, StageReport), Denial> {
        let (mut action, mut report) = judged;
        let gate = match &ctx.gate {
            Some(g) if asks_for_approval(&action) => g.clone(),
            _ => return Ok((action, report)),
        };
        let ids = report.pending_approvals();
        if !gate.holds() || ids.is_empty() {
            return Ok((action, report));
        }
        let limit = Duration::from_secs(body.policy.file.approvals.hold_secs);
        drop(slot.take());
        let held = self.hold(session, &ids, limit).await;
        if held == Held::Approved {
            gate.release_held();
        }
        match held.note(limit) {
            Some(note) => report.reasons.push(note),
            // Re-judged: the gate now releases the call or reports the denial.
            None => {
                let _slot = self.request_slot(ctx).await?;
                (action, report) = self.inspect_request_body(ctx, body).await?;
            }
        }
        Ok((action, report))
    }

    /// Wait until an operator decides every approval in `ids`, or `limit`,
    /// or the client hangs up (then nothing is forwarded: an approval must
    /// not run a tool for a caller that gave up).
    async fn hold(&self, session: &mut Session, ids: &[String], limit: Duration) -> Held {
        let store = &self.app.store;
        // The approval must survive a crash before anyone acts on it.
        if let Err(e) = store.durable().await {
            tracing::error!(error = %e, "approval not durable; not holding");
            return Held::TimedOut;
        }
        let deadline = tokio::time::Instant::now() + limit;
        // The request body is complete; reading now only sees the client
        // hang up (or pipelined bytes, after which we stop probing).
        let mut probe_client = true;
        for id in ids {
            let mut rx = store.approval_watch(id, ApprovalStatus::Pending);
            let status = loop {
                // A store that cannot be read keeps the call waiting: it is
                // refused at its deadline unless a decision arrives first.
                let status = match store.approval_get(id, crate::state::now_ms()) {
                    Ok(a) => a.map_or(ApprovalStatus::Expired, |a| a.status),
                    Err(_) => ApprovalStatus::Pending,
                };
                if status != ApprovalStatus::Pending {
                    break status;
                }
                let decided = tokio::time::timeout_at(deadline, rx.changed());
                tokio::select! {
                    r = decided => match r {
                        Ok(Ok(())) => continue,
                        _ => break ApprovalStatus::Pending,
                    },
                    r = session.downstream_session.read_body_or_idle(true), if probe_client => {
                        match r {
                            Ok(Some(_)) => probe_client = false,
                            _ => {
                                store.approval_unwatch(id);
                                return Held::ClientGone;
                            }
                        }
                    }
                }
            };
            drop(rx);
            store.approval_unwatch(id);
            if let Some(end) = settled(status) {
                return end;
            }
        }
        Held::Approved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(kind: ErrorKind) -> RequestAction {
        RequestAction::Deny {
            status: kind.status(),
            kind,
            body: serde_json::Value::Null,
        }
    }

    #[test]
    fn only_a_denial_asking_for_approval_can_be_held() {
        assert!(asks_for_approval(&deny(ErrorKind::ApprovalRequired)));
        assert!(!asks_for_approval(&deny(ErrorKind::Blocked)));
        assert!(!asks_for_approval(&deny(ErrorKind::TooLarge)));
        assert!(!asks_for_approval(&RequestAction::Forward(None)));
        assert!(!asks_for_approval(&RequestAction::Forward(Some(
            b"{}".to_vec()
        ))));
    }

    #[test]
    fn each_approval_status_ends_or_continues_the_hold() {
        assert_eq!(settled(ApprovalStatus::Approved), None);
        assert_eq!(settled(ApprovalStatus::Pending), Some(Held::TimedOut));
        assert_eq!(settled(ApprovalStatus::Denied), Some(Held::Decided));
        assert_eq!(settled(ApprovalStatus::Expired), Some(Held::Decided));
    }

    #[test]
    fn a_hold_that_ends_without_a_decision_says_why() {
        let limit = Duration::from_secs(30);
        assert_eq!(Held::Approved.note(limit), None);
        assert_eq!(Held::Decided.note(limit), None);
        assert_eq!(
            Held::TimedOut.note(limit).as_deref(),
            Some("No operator decision within 30 s; the approval stays pending.")
        );
        let gone = Held::ClientGone.note(limit).unwrap();
        assert!(gone.contains("nothing was forwarded"), "{gone}");
    }
}
