//! Approvals and permits on Redis. Every transition is one script
//! (`gate.lua`, `resolve.lua`, `expire.lua`), so concurrent gateways see
//! one order of events and a permit is spent exactly once. These are the
//! acknowledged writes: they run on the `Acked` lane, optionally followed
//! by `WAIT <replicas>`, and anything short of a confirmed answer is
//! refused (`GateResult::Unavailable`, `StoreError::Unavailable`): no new
//! permits, no releases, nothing acknowledged that Redis did not confirm.
//! A step whose reply was lost may still have been applied (a permit
//! spent): that costs the agent a new approval, never a second use.

use super::codec;
use super::link::Lane;
use super::scripts;
use super::Inner;
use crate::decision::approvals::{
    permit_sha256, Approval, ApprovalStatus, ConsumeError, Release, ResolveError,
};
use crate::state::approvals::{is_id, new_id, new_permit, Opened};
use crate::state::seam::{ApprovalFilter, GateResult, GateStep, Resolve, StoreError};
use redis::Value;
use std::sync::Arc;

fn rejected(s: &str) -> Option<ConsumeError> {
    Some(match s {
        "unknown" => ConsumeError::Unknown,
        "not_approved" => ConsumeError::NotApproved,
        "denied" => ConsumeError::Denied,
        "expired" => ConsumeError::Expired,
        "used" => ConsumeError::AlreadyUsed,
        "mismatch" => ConsumeError::Mismatch,
        _ => return None,
    })
}

fn parts(v: &Value, what: &str) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) => Ok(items.clone()),
        Value::ServerError(e) => Err(StoreError::Unavailable(format!("{what}: {e:?}"))),
        other => Err(StoreError::Corrupt(format!(
            "{what}: unexpected reply {other:?}"
        ))),
    }
}

fn gate_result(v: &Value) -> Result<GateResult, StoreError> {
    let p = parts(v, "gate")?;
    let (Some(kind), Some(flag), Some(rej), Some(hash)) = (p.first(), p.get(1), p.get(2), p.get(3))
    else {
        return Err(StoreError::Corrupt(format!("gate reply {p:?}")));
    };
    let kind = codec::string(kind, "gate kind")?;
    let approval = codec::approval(&codec::fields(hash)?)?;
    let rejected = rejected(&codec::string(rej, "gate rejected")?);
    Ok(match kind.as_str() {
        "released" => GateResult::Released {
            approval,
            by_permit: codec::string(flag, "gate flag")? == "1",
        },
        "created" => GateResult::Waiting {
            opened: Opened::Created(approval),
            rejected,
        },
        "pending" => GateResult::Waiting {
            opened: Opened::Pending(approval),
            rejected,
        },
        "approved" => GateResult::Waiting {
            opened: Opened::Approved(approval),
            rejected,
        },
        "denied" => GateResult::Waiting {
            opened: Opened::Denied(approval),
            rejected,
        },
        other => return Err(StoreError::Corrupt(format!("gate outcome {other:?}"))),
    })
}

/// The `WAIT` answer is the last value when replicas are required.
fn replicated(inner: &Inner, values: &mut Vec<Value>) -> Result<(), StoreError> {
    let want = inner.link.url().wait_replicas;
    if want == 0 {
        return Ok(());
    }
    match values.pop() {
        Some(Value::Int(n)) if n >= i64::from(want) => Ok(()),
        other => Err(StoreError::NotDurable(format!(
            "{want} replica(s) required, WAIT answered {other:?}"
        ))),
    }
}

impl Inner {
    fn with_wait(&self, pipe: &mut redis::Pipeline) {
        let url = self.link.url();
        if url.wait_replicas > 0 {
            pipe.cmd("WAIT")
                .arg(url.wait_replicas)
                .arg(url.wait_timeout.as_millis() as u64);
        }
    }

    fn gate_call(&self, s: &GateStep) -> redis::Cmd {
        let t = &s.template;
        let now = t.created_ms;
        let psha = s
            .permit
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(permit_sha256)
            .unwrap_or_default();
        let mut inv = scripts::GATE.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(now)
            .arg(match s.release {
                Release::NextCall => "next_call",
                Release::Permit => "permit",
            })
            .arg(psha)
            .arg(&t.fingerprint)
            .arg(&t.request_id)
            .arg(new_id(now))
            .arg(serde_json::to_string(t).unwrap_or_default())
            .arg(&t.session_id)
            .arg(&t.agent_id)
            .arg(t.created_ms)
            .arg(t.expires_ms)
            .arg(self.opts.approval_keep.as_millis() as u64);
        let mut pipe = redis::pipe();
        pipe.invoke_script(&inv);
        let cmd = pipe.cmd_iter().next().cloned().expect("one command");
        cmd
    }

    pub(super) async fn gate(&self, steps: Vec<GateStep>) -> Result<Vec<GateResult>, StoreError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for s in &steps {
            pipe.add_command(self.gate_call(s));
        }
        self.with_wait(&mut pipe);
        let unavailable = |e: &StoreError| {
            self.metrics
                .unavailable
                .with_label_values(&["gate"])
                .inc_by(steps.len() as u64);
            tracing::warn!(error = %e, steps = steps.len(), "approval gate refused: shared state unavailable");
            Ok(vec![GateResult::Unavailable; steps.len()])
        };
        let mut values = match self.query(Lane::Acked, &pipe).await {
            Ok(v) => v,
            Err(e) => return unavailable(&e),
        };
        if let Err(e) = replicated(self, &mut values) {
            return unavailable(&e);
        }
        values
            .iter()
            .map(|v| match gate_result(v) {
                Err(StoreError::Unavailable(_)) => Ok(GateResult::Unavailable),
                other => other,
            })
            .collect()
    }

    pub(super) async fn submit(&self, template: Approval) -> Result<Opened, StoreError> {
        let step = GateStep {
            template,
            release: Release::Permit,
            permit: None,
        };
        match self.gate(vec![step]).await?.pop() {
            Some(GateResult::Waiting { opened, .. }) => Ok(opened),
            Some(GateResult::Unavailable) | None => {
                Err(StoreError::Unavailable("approval not opened".into()))
            }
            Some(GateResult::Released { .. }) => {
                Err(StoreError::Corrupt("submit released an approval".into()))
            }
        }
    }

    #[allow(clippy::type_complexity)]
    pub(super) async fn resolve(
        &self,
        r: Resolve,
    ) -> Result<Option<Result<(Approval, Option<String>), ResolveError>>, StoreError> {
        if !is_id(&r.id) {
            return Ok(None);
        }
        let permit = r.approve.map(|_| new_permit());
        let mut inv = scripts::RESOLVE.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(r.id.trim())
            .arg(r.now_ms)
            .arg(if r.approve.is_some() { "1" } else { "0" })
            .arg(permit.as_deref().map(permit_sha256).unwrap_or_default())
            .arg(r.approve.unwrap_or(0).saturating_mul(1000))
            .arg(&r.resolver)
            .arg(&r.credential)
            .arg(&r.note)
            .arg(self.opts.approval_keep.as_millis() as u64);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.invoke_script(&inv);
        self.with_wait(&mut pipe);
        let refused = |e: StoreError| {
            self.metrics
                .unavailable
                .with_label_values(&["resolve"])
                .inc();
            Err(e)
        };
        let mut values = match self.query(Lane::Acked, &pipe).await {
            Ok(v) => v,
            Err(e) => return refused(e),
        };
        if let Err(e) = replicated(self, &mut values) {
            return refused(e);
        }
        let p = parts(values.first().unwrap_or(&Value::Nil), "resolve")?;
        match p
            .first()
            .map(|k| codec::string(k, "resolve"))
            .transpose()?
            .as_deref()
        {
            Some("missing") => Ok(None),
            Some("not_pending") => {
                let st = p.get(1).map(|s| codec::string(s, "status")).transpose()?;
                let st = st
                    .as_deref()
                    .and_then(ApprovalStatus::parse)
                    .ok_or_else(|| StoreError::Corrupt(format!("resolve reply {p:?}")))?;
                Ok(Some(Err(ResolveError::NotPending(st))))
            }
            Some("ok") => {
                let a = codec::approval(&codec::fields(p.get(1).unwrap_or(&Value::Nil))?)?;
                Ok(Some(Ok((a, permit))))
            }
            _ => Err(StoreError::Corrupt(format!("resolve reply {p:?}"))),
        }
    }

    pub(super) async fn approval(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError> {
        if !is_id(id) {
            return Ok(None);
        }
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL").arg(self.keys.approval(id.trim()));
        let v = self.query(Lane::Fast, &pipe).await?;
        let f = codec::fields(v.first().unwrap_or(&Value::Nil))?;
        if f.is_empty() {
            return Ok(None);
        }
        let mut a = codec::approval(&f)?;
        a.refresh(now_ms);
        Ok(Some(a))
    }

    /// The status a held call waits on, expiry applied (`None`: no such approval).
    pub(super) async fn status(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<ApprovalStatus>, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HMGET")
            .arg(self.keys.approval(id))
            .arg("status")
            .arg("expires")
            .arg("pexp");
        let v = self.query(Lane::Fast, &pipe).await?;
        let f = parts(v.first().unwrap_or(&Value::Nil), "status")?;
        let text = |i: usize| match f.get(i) {
            Some(Value::Nil) | None => None,
            Some(x) => codec::string(x, "status").ok(),
        };
        let Some(status) = text(0).as_deref().and_then(ApprovalStatus::parse) else {
            return Ok(None);
        };
        let int = |i| {
            text(i)
                .and_then(|s| s.parse::<f64>().ok())
                .map(|x| x as i64)
        };
        // As `Approval::refresh` does.
        let expired = match status {
            ApprovalStatus::Pending => now_ms >= int(1).unwrap_or(0),
            ApprovalStatus::Approved => int(2).is_some_and(|t| now_ms >= t),
            _ => false,
        };
        Ok(Some(if expired {
            ApprovalStatus::Expired
        } else {
            status
        }))
    }

    /// Newest first. Scans the creation index in pages (at most 10,000
    /// entries per call: listings are for operators, not the hot path).
    pub(super) async fn approvals(&self, f: ApprovalFilter) -> Result<Vec<Approval>, StoreError> {
        const PAGE: usize = 200;
        const MAX_SCAN: usize = 10_000;
        let mut out = Vec::new();
        let mut start = 0;
        while out.len() < f.limit && start < MAX_SCAN {
            let mut pipe = redis::pipe();
            pipe.cmd("ZREVRANGE")
                .arg(self.keys.approvals())
                .arg(start)
                .arg(start + PAGE - 1);
            let v = self.query(Lane::Fast, &pipe).await?;
            let ids: Vec<String> = match v.first() {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| codec::string(i, "approval id"))
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            };
            if ids.is_empty() {
                break;
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGETALL").arg(self.keys.approval(id));
            }
            for v in self.query(Lane::Fast, &pipe).await? {
                let fields = codec::fields(&v)?;
                if fields.is_empty() {
                    continue; // past its retention; the index entry goes with the sweep
                }
                let mut a = codec::approval(&fields)?;
                a.refresh(f.now_ms);
                if f.status.is_some_and(|s| s != a.status)
                    || f.session_id.as_deref().is_some_and(|s| s != a.session_id)
                {
                    continue;
                }
                out.push(a);
                if out.len() >= f.limit {
                    break;
                }
            }
            start += PAGE;
        }
        Ok(out)
    }

    /// Persist due expiries (wakes their held calls); returns how many.
    pub(super) async fn maintain(&self, now_ms: i64) -> Result<u64, StoreError> {
        let mut inv = scripts::EXPIRE.prepare_invoke();
        inv.arg(self.keys.base())
            .arg(now_ms)
            .arg(500)
            .arg(self.opts.approval_keep.as_millis() as u64)
            .arg(self.opts.session_idle.as_millis() as u64);
        let mut pipe = redis::pipe();
        pipe.invoke_script(&inv);
        let v = self.query(Lane::Fast, &pipe).await?;
        match v.first() {
            Some(Value::Int(n)) => Ok((*n).max(0) as u64),
            other => Err(StoreError::Corrupt(format!("expire reply {other:?}"))),
        }
    }
}

/// Runs the expiry sweep every `maintain_every` while connected.
pub(super) async fn sweeper(inner: Arc<Inner>) {
    loop {
        tokio::time::sleep(inner.opts.maintain_every).await;
        if inner.link.is_up() {
            if let Err(e) = inner.maintain(crate::state::now_ms()).await {
                tracing::debug!(error = %e, "approval expiry sweep skipped");
            }
        }
    }
}
