//! Policy profiles (TOML): any text is a profile or an error that says
//! where; never a panic. Parsing and validation run on every input;
//! compiling the detectors (slow: hundreds of rules) on one in sixteen,
//! chosen by the input's first byte, so the search stays fast.

use asg::decision::policy::{Policy, PolicyError, PolicySource};

fn check_error(e: PolicyError, text: &str) {
    let shown = e.to_string();
    assert!(!shown.is_empty());
    if let PolicyError::Invalid { line: Some(l), .. } = e {
        assert!(l >= 1 && l <= text.lines().count() + 1, "line {l}");
    }
}

pub fn run(data: &[u8]) {
    let compile = data.first().is_some_and(|b| b & 0x0f == 0);
    let text = String::from_utf8_lossy(data);
    match Policy::parse(&text, "fuzz") {
        Err(e) => check_error(e, &text),
        Ok(_) => {
            if compile {
                match Policy::compile(&text, PolicySource::Embedded("fuzz"), None) {
                    Ok(p) => assert!(p.version.starts_with(&format!("{}@", p.name()))),
                    Err(e) => check_error(e, &text),
                }
            }
        }
    }
}
