//! Inspection slots on the proxy path (see `datapath/inspect_slots.rs`):
//! a request body is decoded and inspected only while holding a slot; when
//! none frees up in time the client gets 503 with `Retry-After`, in its
//! dialect's error format, and nothing is forwarded. Large buffered
//! responses take a slot too; a response that cannot get one is withheld.

use super::context::Ctx;
use super::errors::Denial;
use super::Gateway;
use crate::datapath::dialect::ErrorKind;
use crate::datapath::enforce::{Stage, StageReport};
use crate::datapath::inspect_slots::{Slot, Surface};
use crate::decision::Decision;

impl Gateway {
    /// A slot for inspecting this request, or the 503 to answer with.
    pub(super) async fn request_slot(&self, ctx: &mut Ctx) -> Result<Slot, Denial> {
        let slots = &self.app.inspect_slots;
        slots.acquire(Surface::Request).await.map_err(|why| {
            let kind = ErrorKind::Unavailable;
            ctx.retry_after = Some(slots.retry_after_secs());
            Denial {
                status: kind.status(),
                body: ctx
                    .dialect
                    .error_body(kind, &slots.busy_message(why), &ctx.id),
                reason: "inspect_busy",
            }
        })
    }

    /// A slot for inspecting a large response; `Err` holds the body that
    /// replaces the withheld response.
    pub(super) fn response_slot(&self, ctx: &mut Ctx) -> Result<Slot, Vec<u8>> {
        let slots = &self.app.inspect_slots;
        slots.acquire_blocking(Surface::Response).map_err(|why| {
            let msg = slots.busy_message(why);
            ctx.reports.push(StageReport {
                decision: Decision::Block,
                reasons: vec![msg.clone()],
                ..StageReport::new(Stage::Response)
            });
            self.app
                .metrics
                .gateway_errors
                .with_label_values(&["response_inspect_busy"])
                .inc();
            ctx.dialect
                .error_body(ErrorKind::Unavailable, &msg, &ctx.id)
                .to_string()
                .into_bytes()
        })
    }
}
