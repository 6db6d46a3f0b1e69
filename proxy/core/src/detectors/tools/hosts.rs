//! Host lists (`example.com`, `*.example.com`) shared by the rule file
//! (exfiltration and metadata hosts) and the profile's egress allow and deny
//! lists. Their own module, so the rule file and the egress judgement both
//! depend on it instead of on each other.

use std::collections::HashSet;

/// Host patterns (`example.com`, `*.example.com`), lower-cased once and
/// split for lookup: exact names in a set, suffixes in a list.
#[derive(Debug, Default)]
pub struct HostList {
    exact: HashSet<String>,
    suffixes: Vec<String>,
}

impl HostList {
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> HostList {
        let mut list = HostList::default();
        for p in patterns {
            let p = p.as_ref().trim().to_ascii_lowercase();
            match p.strip_prefix("*.") {
                Some(suffix) => {
                    list.exact.insert(suffix.to_string());
                    list.suffixes.push(format!(".{suffix}"));
                }
                None => {
                    list.exact.insert(p);
                }
            }
        }
        list
    }

    pub fn contains(&self, host: &str) -> bool {
        self.exact.contains(host) || self.suffixes.iter().any(|s| host.ends_with(s.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::HostList;

    #[test]
    fn exact_names_and_wildcard_suffixes() {
        let list = HostList::new(&["Example.com", "*.ngrok.io"]);
        assert!(list.contains("example.com"));
        assert!(!list.contains("www.example.com"));
        assert!(list.contains("ngrok.io") && list.contains("a.b.ngrok.io"));
        assert!(!list.contains("evilngrok.io"));
    }
}
