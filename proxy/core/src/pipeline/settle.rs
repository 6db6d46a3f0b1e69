//! The second half: apply the gate's results, word them, and say what the
//! stage adds to session and agent risk.

use super::decide::{prose_refused, CallAction, Draft};
use super::{text, Channel, Gated, Inputs, Observed, Phase, Scoring, StateView};
use crate::approvals::ApprovalStatus;
use crate::session::{self, Outcome as StepOutcome, Record, Staged};
use crate::{Assessment, Decision};

/// What happens to the prose of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProseAction {
    Pass,
    /// A request whose prose was challenged under `request_challenge =
    /// "block"`: refused as needing approval.
    Challenge,
    /// A request whose prose was blocked: refused.
    Refuse,
    /// A model's answer whose text was blocked: withheld.
    Withhold,
    /// The decision API: reported, the caller enforces.
    Report,
}

/// One call, settled.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub name: String,
    pub target: String,
    pub tags: Vec<String>,
    pub base_score: f64,
    /// With the gate's result in its reasons; its decision is final.
    pub assessment: Assessment,
    pub decision: Decision,
    pub action: CallAction,
    pub gated: Option<Gated>,
    /// One line for the agent: the findings that decided, then what the
    /// approval flow said.
    pub why: String,
    /// For a call that waits: `approval id <id>` and what happens next.
    pub waiting: Option<String>,
}

/// What a stage came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The stage's decision: the strictest of its prose and calls.
    pub decision: Decision,
    pub prose: Assessment,
    pub prose_action: ProseAction,
    pub calls: Vec<CallOutcome>,
    /// What the stage adds to its scopes (none when sessions are off).
    /// `decision` and `new_request` are the caller's to set: a record may
    /// sum several stages of one request.
    pub record: Option<Record>,
    pub state_unavailable: bool,
}

impl Outcome {
    /// Approvals this stage opened, found or spent.
    pub fn approvals(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in &self.calls {
            if let Some(id) = c.gated.as_ref().and_then(Gated::approval_id) {
                if !ids.iter().any(|x| x == id) {
                    ids.push(id.to_string());
                }
            }
        }
        ids
    }

    /// The strictest call action.
    pub fn call_action(&self) -> CallAction {
        self.calls
            .iter()
            .map(|c| c.action)
            .max()
            .unwrap_or(CallAction::Pass)
    }
}

/// Apply the gate's results (one per [`Draft::gate`] step, in order; a
/// missing result counts as unavailable) and word the outcome.
pub fn settle(inp: &Inputs<'_>, obs: &Observed<'_>, draft: Draft, gated: Vec<Gated>) -> Outcome {
    let cfg = &inp.policy.file.approvals;
    let mut results: Vec<Option<Gated>> = vec![None; draft.calls.len()];
    for (i, step) in draft.gate.iter().enumerate() {
        let g = gated.get(i).cloned().unwrap_or(Gated::Unavailable);
        for &c in &step.calls {
            results[c] = Some(g.clone());
        }
    }
    let mut calls = Vec::with_capacity(draft.calls.len());
    for (judged, result) in draft.calls.into_iter().zip(results) {
        let mut a = judged.assessment;
        let mut decision = a.decision;
        let mut action = judged.action;
        let mut why = text::first_reason(&a);
        let mut waiting = None;
        let gated =
            (action == CallAction::NeedsApproval).then(|| result.unwrap_or(Gated::Unavailable));
        match &gated {
            Some(Gated::Released {
                approval,
                by_permit,
            }) => {
                decision = Decision::Allow;
                action = CallAction::Pass;
                let line = text::released(text::how(*by_permit, inp.held), &approval.approval_id);
                a.evaluation.reasons.push(line);
            }
            Some(Gated::Waiting {
                approval, rejected, ..
            }) if approval.status == ApprovalStatus::Denied => {
                decision = Decision::Block;
                action = CallAction::Refuse;
                let line = text::denied(&approval.approval_id);
                why = format!("{}; {why}", line.trim_end_matches('.'));
                a.evaluation.reasons.push(line);
                if let Some(r) = rejected {
                    a.evaluation.reasons.push(r.clone());
                }
            }
            Some(Gated::Waiting {
                approval, rejected, ..
            }) => {
                let note =
                    text::waiting_note(cfg, &obs.channel, approval.status, rejected.as_deref());
                let line = format!("approval id {}{note}", approval.approval_id);
                why = format!("{why}; {line}");
                waiting = Some(line);
                a.evaluation
                    .reasons
                    .push(text::waiting(&approval.approval_id, &note));
            }
            Some(Gated::Refused { reason }) => {
                decision = Decision::Block;
                action = CallAction::Refuse;
                why = format!("{reason} {why}");
                a.evaluation.reasons.push(reason.clone());
            }
            Some(Gated::Unavailable) | None => {}
        }
        a.decision = decision;
        calls.push(CallOutcome {
            name: judged.name,
            target: judged.target,
            tags: judged.tags,
            base_score: judged.base_score,
            assessment: a,
            decision,
            action,
            gated,
            why,
            waiting,
        });
    }

    let prose_action = match (obs.channel, obs.phase) {
        (Channel::DecisionApi { .. }, _) | (_, Phase::Inspect) => ProseAction::Report,
        (_, Phase::Response) if draft.prose.decision == Decision::Block => ProseAction::Withhold,
        (_, Phase::Response) => ProseAction::Pass,
        (_, Phase::Request) => match prose_refused(inp.policy, draft.prose.decision) {
            Some(true) => ProseAction::Refuse,
            Some(false) => ProseAction::Challenge,
            None => ProseAction::Pass,
        },
    };
    let mut prose = draft.prose;
    let decision = match obs.scoring {
        // One assessment for the subject: with calls their settled
        // decision is the answer; prose alone is reported as assessed (a
        // human is asked only about actions).
        Scoring::Whole => match calls.first() {
            Some(c) => c.decision,
            None if prose.decision == Decision::RequireApproval => Decision::Challenge,
            None => prose.decision,
        },
        Scoring::PerPart => calls
            .iter()
            .map(|c| c.decision)
            .fold(prose.decision, Decision::max),
    };
    if obs.scoring == Scoring::Whole {
        // The whole subject's answer carries what the gate said.
        if let Some(c) = calls.first() {
            for r in &c.assessment.evaluation.reasons {
                if !prose.evaluation.reasons.contains(r) {
                    prose.evaluation.reasons.push(r.clone());
                }
            }
        }
        prose.decision = decision;
    }
    let record = match inp.state {
        StateView::Off => None,
        _ => Some(record(
            inp,
            obs,
            &prose,
            draft.prose_base,
            &draft.steps,
            &calls,
        )),
    };
    Outcome {
        decision,
        prose,
        prose_action,
        calls,
        record,
        state_unavailable: draft.state_unavailable,
    }
}

/// What the stage adds to risk: the prose's base score (not a held call's
/// second judgement, nor a model's answer), then every call's base score
/// unless it waits for an operator (it has not happened; it counts when
/// released); a step per call that ran or was refused, a staged entry per
/// call that waits.
fn record(
    inp: &Inputs<'_>,
    obs: &Observed<'_>,
    whole: &Assessment,
    prose_base: f64,
    steps: &[(String, Vec<String>)],
    calls: &[CallOutcome],
) -> Record {
    let mut rec = Record::default();
    let outcome_of = |c: &CallOutcome| match &c.gated {
        Some(Gated::Released { approval, .. }) => Ok(approval.approval_id.clone()),
        Some(Gated::Waiting { approval, .. }) if approval.status != ApprovalStatus::Denied => {
            Err(approval.approval_id.clone())
        }
        _ => Ok(String::new()),
    };
    let step = |d: Decision| {
        if d == Decision::Block || d == Decision::RequireApproval {
            StepOutcome::Blocked
        } else {
            StepOutcome::Executed
        }
    };
    match obs.scoring {
        Scoring::Whole => {
            let first = calls.first();
            match first.map(outcome_of) {
                Some(Err(id)) => rec.staged.push(Staged {
                    at_ms: inp.now_ms,
                    tool: first.map(|c| c.name.clone()).unwrap_or_default(),
                    approval_id: id,
                }),
                released => {
                    let o = match released {
                        Some(Ok(id)) if !id.is_empty() => {
                            rec.released.push(id);
                            StepOutcome::Approved
                        }
                        _ => step(whole.decision),
                    };
                    rec.steps = steps
                        .iter()
                        .map(|(n, t)| (n.clone(), t.clone(), o))
                        .collect();
                    rec.score = prose_base;
                    if o == StepOutcome::Blocked {
                        rec.causes = session::causes_of(whole);
                    }
                }
            }
        }
        Scoring::PerPart => {
            if obs.phase != Phase::Response && !inp.held {
                rec.score += prose_base;
            }
            for c in calls {
                match outcome_of(c) {
                    Err(id) => rec.staged.push(Staged {
                        at_ms: inp.now_ms,
                        tool: c.name.clone(),
                        approval_id: id,
                    }),
                    Ok(id) => {
                        let o = if id.is_empty() {
                            step(c.decision)
                        } else {
                            rec.released.push(id);
                            StepOutcome::Approved
                        };
                        if o == StepOutcome::Blocked {
                            for cause in session::causes_of(&c.assessment) {
                                if !rec.causes.contains(&cause) {
                                    rec.causes.push(cause);
                                }
                            }
                        }
                        rec.steps.push((c.name.clone(), c.tags.clone(), o));
                        rec.score += c.base_score;
                    }
                }
            }
        }
    }
    rec
}

/// Add one part of a stage (a streamed call) to the stage's record.
pub fn merge_records(into: &mut Record, part: Record) {
    into.steps.extend(part.steps);
    into.staged.extend(part.staged);
    into.released.extend(part.released);
    into.score += part.score;
    for c in part.causes {
        if !into.causes.contains(&c) {
            into.causes.push(c);
        }
    }
}
