//! The Lua scripts, each prefixed with `lua/common.lua`. Loaded on every
//! connect (SCRIPT LOAD); a NOSCRIPT reply (a restarted or failed-over
//! server, SCRIPT FLUSH) reloads them and retries: nothing ran.

use redis::aio::MultiplexedConnection;
use redis::{RedisResult, Script, Value};
use std::sync::LazyLock;

const COMMON: &str = include_str!("lua/common.lua");

fn build(body: &str) -> Script {
    Script::new(&format!("{COMMON}\n{body}"))
}

pub static GATE: LazyLock<Script> = LazyLock::new(|| build(include_str!("lua/gate.lua")));
pub static RESOLVE: LazyLock<Script> = LazyLock::new(|| build(include_str!("lua/resolve.lua")));
pub static RECORD: LazyLock<Script> = LazyLock::new(|| build(include_str!("lua/record.lua")));
pub static EXPIRE: LazyLock<Script> = LazyLock::new(|| build(include_str!("lua/expire.lua")));
pub static RATE: LazyLock<Script> = LazyLock::new(|| build(include_str!("lua/rate.lua")));

pub async fn load_all(c: &mut MultiplexedConnection) -> RedisResult<()> {
    for s in [&*GATE, &*RESOLVE, &*RECORD, &*EXPIRE, &*RATE] {
        s.prepare_invoke().load_async(c).await?;
    }
    Ok(())
}

pub fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT")
}
