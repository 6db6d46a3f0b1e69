//! Policy profiles (TOML): any text compiles or gives an error that says
//! where; never a panic.

use asg::decision::policy::{Policy, PolicyError, PolicySource};

pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Policy::compile(&text, PolicySource::Embedded("fuzz"), None) {
        Ok(p) => assert!(p.version.starts_with(&format!("{}@", p.name()))),
        Err(e) => {
            let shown = e.to_string();
            assert!(!shown.is_empty());
            if let PolicyError::Invalid { line: Some(l), .. } = e {
                assert!(l >= 1 && l <= text.lines().count() + 1, "line {l}");
            }
        }
    }
}
