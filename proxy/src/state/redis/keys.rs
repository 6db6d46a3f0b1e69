//! Key names. Everything lives under `<prefix>:v1:`: the version segment
//! is the values' format version (a build that changes a value's layout
//! moves to `v2:` and never misreads the old one), the prefix lets several
//! fleets share one Redis.
//!
//! | key | type | what |
//! |---|---|---|
//! | `s:<session>` | hash | session risk (`codec.rs`), TTL = idle expiry |
//! | `a:<agent>` | hash | agent risk, TTL = idle expiry |
//! | `recent` | zset | session ids by last activity (console) |
//! | `ap:<id>` | hash | approval, TTL = its lifetime + retention |
//! | `slot:<fingerprint>` | string | the live approval of a binding |
//! | `permit:<sha256>` | string | approval id of a permit (only the hash) |
//! | `aps` | zset | approval ids by creation (listing) |
//! | `due` | zset | approval ids by next deadline (expiry sweep) |
//! | `rl:<key>` | string | GCRA theoretical arrival time |
//! | `tail` / `tailseq` | stream / counter | the console's live tail |
//! | `events` | pub/sub channel | `<status> <approval id>` on every decision |
//!
//! Scripts derive some keys from ids they read (the approval behind a
//! slot), so the layout needs one Redis primary (standalone or sentinel),
//! not Redis Cluster.

/// The format version of every value under the prefix.
pub const VERSION: &str = "v1";

#[derive(Debug, Clone)]
pub struct Keys {
    base: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            base: format!("{prefix}:{VERSION}:"),
        }
    }

    /// `<prefix>:v1:`, passed to scripts that derive keys.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn k(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}{id}", self.base)
    }

    pub fn session(&self, id: &str) -> String {
        self.k("s:", id)
    }

    pub fn agent(&self, id: &str) -> String {
        self.k("a:", id)
    }

    pub fn approval(&self, id: &str) -> String {
        self.k("ap:", id)
    }

    pub fn approvals(&self) -> String {
        self.k("aps", "")
    }

    pub fn recent(&self) -> String {
        self.k("recent", "")
    }

    pub fn rate(&self, key: &str) -> String {
        self.k("rl:", key)
    }

    pub fn tail(&self) -> String {
        self.k("tail", "")
    }

    pub fn events(&self) -> String {
        self.k("events", "")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_prefixed_and_versioned() {
        let k = super::Keys::new("fleet");
        assert_eq!(k.session("s:1"), "fleet:v1:s:s:1");
        assert_eq!(k.approval("ab"), "fleet:v1:ap:ab");
        assert_eq!(k.events(), "fleet:v1:events");
    }
}
