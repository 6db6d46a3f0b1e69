//! The console's live tail: a stream capped at `tail_max` entries
//! (`XADD MAXLEN ~`, written by `record.lua`; "~" lets Redis trim whole
//! nodes, so it holds up to one node more). Entry ids are `<seq>-0` with
//! `seq` from one counter, so every gateway's entries share one order and
//! the console pages with `after = seq`.

use super::codec;
use super::link::Lane;
use super::Inner;
use crate::state::seam::{StoreError, TailEntry};
use redis::Value;

fn entry(v: &Value) -> Result<TailEntry, StoreError> {
    let Value::Array(parts) = v else {
        return Err(StoreError::Corrupt(format!("tail entry {v:?}")));
    };
    let (Some(id), Some(fields)) = (parts.first(), parts.get(1)) else {
        return Err(StoreError::Corrupt(format!("tail entry {parts:?}")));
    };
    let id = codec::string(id, "tail id")?;
    let seq = id
        .split('-')
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("tail id {id:?}")))?;
    let f = codec::fields(fields)?;
    let event = serde_json::from_str(f.get("e").map(String::as_str).unwrap_or(""))
        .map_err(|e| StoreError::Corrupt(format!("tail entry {seq}: {e}")))?;
    Ok(TailEntry {
        seq,
        gateway: f.get("g").cloned().unwrap_or_default(),
        event,
    })
}

impl Inner {
    pub(super) async fn tail(
        &self,
        after: Option<u64>,
        n: usize,
    ) -> Result<Vec<TailEntry>, StoreError> {
        let n = n.clamp(1, self.link.url().tail_max * 2);
        let mut pipe = redis::pipe();
        match after {
            Some(a) => pipe
                .cmd("XRANGE")
                .arg(self.keys.tail())
                .arg(format!("({a}-0"))
                .arg("+")
                .arg("COUNT")
                .arg(n),
            None => pipe
                .cmd("XREVRANGE")
                .arg(self.keys.tail())
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(n),
        };
        let v = self.query(Lane::Fast, &pipe).await?;
        let items = match v.first() {
            Some(Value::Array(items)) => items,
            Some(Value::Nil) | None => return Ok(Vec::new()),
            Some(other) => return Err(StoreError::Corrupt(format!("tail reply {other:?}"))),
        };
        let mut out = items.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
        if after.is_none() {
            out.reverse();
        }
        Ok(out)
    }
}
