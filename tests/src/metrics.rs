//! Prometheus text exposition format parsing (enough for counters, gauges and histogram series).

/// One sample line: `name{label="value",…} value [timestamp]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parse every sample line; comments (`# HELP`, `# TYPE`) and malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(|l| parse_line(l.trim())).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = line[..name_end].to_string();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if rest.starts_with('{') {
        let (parsed, after) = parse_labels(&rest[1..])?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parse `k="v",k2="v2"}` (after the opening brace); returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        let mut chars = s[eq + 1..].trim_start().strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        let quoted = s[eq + 1..].trim_start().strip_prefix('"')?;
        s = &quoted[end + 1..];
        labels.push((key, value));
    }
}

/// Sum of the values of all samples named `name` whose labels include every `(key, value)` in `labels`
/// (a subset match: `&[]` sums over all label sets). `None` when no sample matches.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<f64> = parse(text)
        .into_iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(v)))
        .map(|s| s.value)
        .collect();
    (!matching.is_empty()).then(|| matching.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP asg_requests_total Requests.
# TYPE asg_requests_total counter
asg_requests_total{dialect="chat",outcome="allowed"} 3
asg_requests_total{dialect="chat",outcome="blocked"} 2
asg_requests_total{dialect="anthropic",outcome="allowed"} 1 1700000000000
asg_weird{msg="a \"quoted\", value\\n",x="}"} 1.5e3
asg_latency_seconds_bucket{le="+Inf"} 7
asg_up 1
"#;

    #[test]
    fn parses_and_sums_with_subset_labels() {
        assert_eq!(
            value(TEXT, "asg_requests_total", &[("dialect", "chat")]),
            Some(5.0)
        );
        assert_eq!(value(TEXT, "asg_requests_total", &[]), Some(6.0));
        assert_eq!(
            value(TEXT, "asg_requests_total", &[("outcome", "blocked")]),
            Some(2.0)
        );
        assert_eq!(
            value(TEXT, "asg_requests_total", &[("dialect", "mcp")]),
            None
        );
        assert_eq!(value(TEXT, "asg_up", &[]), Some(1.0));
        assert_eq!(
            value(TEXT, "asg_latency_seconds_bucket", &[("le", "+Inf")]),
            Some(7.0)
        );
        let weird = parse(TEXT)
            .into_iter()
            .find(|s| s.name == "asg_weird")
            .unwrap();
        assert_eq!(weird.label("msg"), Some("a \"quoted\", value\\n"));
        assert_eq!(weird.label("x"), Some("}"));
        assert_eq!(weird.value, 1500.0);
    }
}
