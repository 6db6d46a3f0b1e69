//! The first half: assess, add session risk, map each call onto an action
//! and say which calls need the approval gate.

use super::template::{binding_arguments, ApprovalTemplate};
use super::{Channel, Inputs, Observed, Phase, Scoring, StateView};
use crate::approvals::{Approval, Binding, Origin, Release};
use crate::policy::{RequestChallenge, ToolChallenge};
use crate::session::{self, Scopes};
use crate::types::{DetectorId, Severity};
use crate::{assess_with_history, Assessment, Decision, Finding, Policy, Subject};

/// What happens to one tool call (ordered by strictness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CallAction {
    Pass,
    /// Waits for a human: refused (or held) for now, saying so.
    NeedsApproval,
    Refuse,
}

/// A call's decision mapped through the profile: the decision to report
/// (a challenge that asks a human *is* a `require_approval`) and the
/// action. The only place a challenge becomes anything else.
pub fn call_action(policy: &Policy, decision: Decision) -> (Decision, CallAction) {
    match decision {
        Decision::Allow | Decision::AllowWithRedaction => (decision, CallAction::Pass),
        Decision::Challenge => match policy.file.proxy.tool_challenge {
            ToolChallenge::Allow => (decision, CallAction::Pass),
            ToolChallenge::RequireApproval => {
                (Decision::RequireApproval, CallAction::NeedsApproval)
            }
            ToolChallenge::Block => (Decision::Block, CallAction::Refuse),
        },
        Decision::RequireApproval => (decision, CallAction::NeedsApproval),
        Decision::Block => (decision, CallAction::Refuse),
    }
}

/// Whether prose with this decision is refused on an enforcing channel,
/// and whether that refusal is a hard block.
pub fn prose_refused(policy: &Policy, decision: Decision) -> Option<bool> {
    match decision {
        Decision::Block => Some(true),
        Decision::Challenge | Decision::RequireApproval
            if policy.file.proxy.request_challenge == RequestChallenge::Block =>
        {
            Some(false)
        }
        _ => None,
    }
}

/// One call, judged.
#[derive(Debug, Clone)]
pub struct Judged {
    pub name: String,
    /// The call's target (raw; mask before display).
    pub target: String,
    pub tags: Vec<String>,
    /// Score without session findings.
    pub base_score: f64,
    /// With session findings; its decision is the mapped one.
    pub assessment: Assessment,
    pub action: CallAction,
}

/// One approval gate step: these calls wait for the approval of this
/// binding (a presented permit is tried first, then the release mode).
#[derive(Debug, Clone)]
pub struct GateStep {
    pub calls: Vec<usize>,
    pub template: Approval,
    pub release: Release,
    pub permit: Option<String>,
}

/// What [`decide`] concluded before the gate ran.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The prose's assessment (with session findings on requests and
    /// decision API calls). Under [`Scoring::Whole`]: the whole subject's.
    pub prose: Assessment,
    pub prose_base: f64,
    pub calls: Vec<Judged>,
    pub gate: Vec<GateStep>,
    /// Chain steps of the whole subject (memory reads and writes
    /// included), with their names, under [`Scoring::Whole`].
    pub steps: Vec<(String, Vec<String>)>,
    pub state_unavailable: bool,
}

/// Assess what was observed in its session and map it.
pub fn decide(inp: &Inputs<'_>, obs: &Observed<'_>) -> Draft {
    let mut draft = match obs.scoring {
        Scoring::PerPart => per_part(inp, obs),
        Scoring::Whole => whole(inp, obs),
    };
    draft.state_unavailable = matches!(inp.state, StateView::Unavailable);
    draft.gate = gate_steps(inp, obs, &draft);
    draft
}

fn history(inp: &Inputs<'_>) -> Vec<Vec<String>> {
    let mut h = match inp.state {
        StateView::Loaded { session, agent } => session::history(
            &inp.policy.file.session,
            &Scopes {
                session,
                agent,
                agent_id: inp.who.agent_id,
            },
            inp.now_ms,
        ),
        _ => Vec::new(),
    };
    h.extend(inp.earlier.iter().map(|e| e.tags.clone()));
    h
}

/// The critical finding for state that could not be read.
pub fn state_unavailable() -> Finding {
    Finding::new(
        "session.state_unavailable",
        DetectorId::SessionRisk,
        "unsafe_action_chain",
        Severity::Critical,
        1.0,
        "Session state is unavailable; refusing rather than judging without it.",
    )
}

/// Session-risk findings for a part whose tags (with the stage's earlier
/// calls) and score are given.
fn session_findings(inp: &Inputs<'_>, tags: &[Vec<String>], score: f64) -> Vec<Finding> {
    match inp.state {
        StateView::Off => Vec::new(),
        StateView::Unavailable => vec![state_unavailable()],
        StateView::Loaded { session, agent } => session::findings(
            &inp.policy.file.session,
            &Scopes {
                session,
                agent,
                agent_id: inp.who.agent_id,
            },
            tags,
            score,
            inp.now_ms,
        ),
    }
}

fn per_part(inp: &Inputs<'_>, obs: &Observed<'_>) -> Draft {
    let policy = inp.policy;
    let texts = Subject {
        texts: obs.subject.texts.clone(),
        memo_scope: obs.subject.memo_scope,
        ..Subject::default()
    };
    let prose_base_a = assess_with_history(policy, &texts, &[], obs.masking);
    let prose_base = prose_base_a.evaluation.total_score;
    let earlier_tags: Vec<Vec<String>> = inp.earlier.iter().map(|e| e.tags.clone()).collect();
    let earlier_score: f64 = inp.earlier.iter().map(|e| e.base_score).sum();
    // Session risk applies to a request's prose as a whole (a session over
    // its block threshold is refused whatever it sends); a model's answer
    // is judged on its own.
    let prose = if obs.phase == Phase::Response {
        prose_base_a
    } else {
        let extra = session_findings(inp, &earlier_tags, earlier_score + prose_base);
        session::join(prose_base_a, extra)
    };

    let mut chain = history(inp);
    let mut stage_tags = earlier_tags;
    let mut stage_score = earlier_score;
    let mut calls = Vec::new();
    for call in &obs.subject.tool_calls {
        // Each call alone: prose elsewhere must not inflate it, and a chain
        // completed by the second call blames the second call.
        let one = Subject {
            tool_calls: vec![call.clone()],
            ..Subject::default()
        };
        let base = assess_with_history(policy, &one, &chain, obs.masking);
        let tags = policy.detectors.tools.tags_of(call);
        chain.push(tags.clone());
        stage_tags.push(tags.clone());
        let base_score = base.evaluation.total_score;
        let extra = session_findings(inp, &stage_tags, stage_score + base_score);
        stage_score += base_score;
        let mut assessment = session::join(base, extra);
        let (decision, action) = call_action(policy, assessment.decision);
        assessment.decision = decision;
        calls.push(Judged {
            name: call.name.clone(),
            target: call.target(),
            tags,
            base_score,
            assessment,
            action,
        });
    }
    Draft {
        prose,
        prose_base,
        calls,
        gate: Vec::new(),
        steps: Vec::new(),
        state_unavailable: false,
    }
}

fn whole(inp: &Inputs<'_>, obs: &Observed<'_>) -> Draft {
    let policy = inp.policy;
    let subject = obs.subject;
    let base = assess_with_history(policy, subject, &history(inp), obs.masking);
    let base_score = base.evaluation.total_score;
    let tags = policy.detectors.steps(subject);
    let extra = session_findings(inp, &tags, base_score);
    let joined = session::join(base, extra);
    let (decision, action) = call_action(policy, joined.decision);
    let mut mapped = joined.clone();
    mapped.decision = decision;
    let names = step_names(subject);
    let calls = subject
        .tool_calls
        .iter()
        .map(|call| Judged {
            name: call.name.clone(),
            target: call.target(),
            tags: policy.detectors.tools.tags_of(call),
            base_score,
            assessment: mapped.clone(),
            action,
        })
        .collect();
    Draft {
        prose: joined,
        prose_base: base_score,
        calls,
        gate: Vec::new(),
        steps: names.into_iter().zip(tags).collect(),
        state_unavailable: false,
    }
}

/// Names for the chain steps of a subject, in `Detectors::steps` order.
fn step_names(subject: &Subject) -> Vec<String> {
    let mut names = Vec::new();
    if !subject.memory_reads.is_empty() {
        names.push("memory_read".to_string());
    }
    names.extend(subject.tool_calls.iter().map(|c| c.name.clone()));
    if !subject.memory_writes.is_empty() {
        names.push("memory_write".to_string());
    }
    names
}

/// The gate runs for calls that need a human when approvals are on and the
/// caller is known by a session or an agent (an approval must be bound to
/// someone); otherwise such calls are refused as needing approval.
fn gate_steps(inp: &Inputs<'_>, obs: &Observed<'_>, draft: &Draft) -> Vec<GateStep> {
    let cfg = &inp.policy.file.approvals;
    if !cfg.enabled || (inp.who.session_id.is_empty() && inp.who.agent_id.is_empty()) {
        return Vec::new();
    }
    let release = if inp.held {
        Release::NextCall
    } else {
        cfg.release
    };
    let waiting: Vec<usize> = draft
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.action == CallAction::NeedsApproval)
        .map(|(i, _)| i)
        .collect();
    if waiting.is_empty() {
        return Vec::new();
    }
    let subject = obs.subject;
    // Under whole scoring one approval covers the subject.
    let groups: Vec<Vec<usize>> = match obs.scoring {
        Scoring::Whole => vec![waiting],
        Scoring::PerPart => waiting.into_iter().map(|i| vec![i]).collect(),
    };
    groups
        .into_iter()
        .map(|calls| {
            let first = calls[0];
            let bound: Vec<&crate::ToolCall> = match obs.scoring {
                Scoring::Whole => subject.tool_calls.iter().collect(),
                Scoring::PerPart => vec![&subject.tool_calls[first]],
            };
            let arguments = binding_arguments(&bound);
            let (origin, context): (Origin, Vec<&str>) = match obs.channel {
                // The prose around a decision API call is part of what was
                // approved; the proxy judges a call apart from its prose.
                Channel::DecisionApi { .. } => (
                    Origin::InspectApi,
                    subject.texts.iter().map(|t| t.text.as_str()).collect(),
                ),
                Channel::Proxy { .. } => (Origin::Proxy, Vec::new()),
            };
            let (memory_reads, memory_writes) = match obs.scoring {
                Scoring::Whole => (
                    subject.memory_reads.iter().map(String::as_str).collect(),
                    subject.memory_writes.iter().map(String::as_str).collect(),
                ),
                Scoring::PerPart => (Vec::new(), Vec::new()),
            };
            let binding = Binding {
                session_id: inp.who.session_id,
                agent_id: inp.who.agent_id,
                tool: &draft.calls[first].name,
                arguments: Some(&arguments),
                context,
                memory_reads,
                memory_writes,
            };
            let target = bound
                .iter()
                .map(|c| c.target())
                .collect::<Vec<_>>()
                .join(" | ");
            let template = ApprovalTemplate {
                binding,
                target: &target,
                origin,
                channel: obs.channel,
                request_id: inp.request_id,
                assessment: Some(&draft.calls[first].assessment),
                now_ms: inp.now_ms,
                ttl_ms: cfg.pending_ttl_secs as i64 * 1000,
            }
            .build(inp.policy, inp.masker, inp.binding_key);
            GateStep {
                calls,
                template,
                release,
                permit: inp.permit.map(str::to_string),
            }
        })
        .collect()
}
