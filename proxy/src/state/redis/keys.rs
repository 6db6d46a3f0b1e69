//! Key names. Everything lives under `<prefix>:v1:`: the version segment
//! is the values' format version (a build that changes a value's layout
//! moves to `v2:` and never misreads the old one), the prefix lets several
//! fleets share one Redis.
//!
//! | key | type | what |
//! |---|---|---|
//! | `s:<session>` | hash | session numbers and owner (`codec.rs`) |
//! | `ss:` `sq:` `sd:` `sm:` `sy:<session>` | lists | its steps, staged approvals, decisions, markers, memory paths |
//! | `a:<agent>` | hash | agent numbers |
//! | `as:` `aq:` `an:<agent>` | lists | its steps, staged approvals, recent sessions |
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
//! A scope's keys share the idle lifetime (`session.idle_expiry_secs`).
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

    /// A session's lists: steps, staged, decisions, markers, memory.
    pub fn session_lists(&self, id: &str) -> [String; 5] {
        ["ss:", "sq:", "sd:", "sm:", "sy:"].map(|k| self.k(k, id))
    }

    /// An agent's lists: steps, staged, sessions.
    pub fn agent_lists(&self, id: &str) -> [String; 3] {
        ["as:", "aq:", "an:"].map(|k| self.k(k, id))
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
        // A list kind is never a session id: `s:` + id vs `ss:` + id.
        assert_eq!(k.session_lists("x")[0], "fleet:v1:ss:x");
        assert_ne!(k.session(":x"), k.session_lists("x")[0]);
        assert_eq!(k.approval("ab"), "fleet:v1:ap:ab");
        assert_eq!(k.events(), "fleet:v1:events");
    }
}
