//! Recursive decoding of encoded payloads: every bound holds (payloads,
//! total output, depth), every span points into the text on character
//! boundaries, and the same text always decodes the same way.

use crate::input::Input;
use asg::decision::normalize::decode::{decode_all, Limits};

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let limits = Limits {
        max_depth: 1 + inp.byte() % 6,
        max_output: 1 + inp.below(1 << 16),
        max_items: 1 + inp.below(80),
        max_token: 1 + inp.below(1 << 15),
        min_token: 1 + inp.below(32),
    };
    let text = String::from_utf8_lossy(inp.rest()).into_owned();
    let d = decode_all(&text, &limits);
    assert!(
        d.items.len() <= limits.max_items,
        "{} payloads",
        d.items.len()
    );
    let total: usize = d.items.iter().map(|i| i.text.len()).sum();
    assert!(total <= limits.max_output, "{total} bytes decoded");
    for i in &d.items {
        assert!(
            i.depth >= 1 && i.depth <= limits.max_depth,
            "depth {}",
            i.depth
        );
        assert!(
            i.span.start <= i.span.end && i.span.end <= text.len(),
            "{:?}",
            i.span
        );
        assert!(text.is_char_boundary(i.span.start) && text.is_char_boundary(i.span.end));
    }
    let again = decode_all(&text, &limits);
    assert_eq!(format!("{:?}", d.items), format!("{:?}", again.items));
}
