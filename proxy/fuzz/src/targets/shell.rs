//! The shell parser: bounded output whatever the input (commands, nesting),
//! a well-formed data-flow graph, the same result every time. Glob
//! matching of program names stays cheap on hostile patterns (the fuzzer's
//! time limit catches a blow-up).

use crate::input::Input;
use asg::decision::detectors::shell::lexer::tokenize;
use asg::decision::detectors::shell::{glob_match, parse, program_name, MAX_COMMANDS, MAX_DEPTH};

pub fn run(data: &[u8]) {
    let mut inp = Input::new(data);
    let split = inp.byte() as usize;
    let src = String::from_utf8_lossy(inp.rest()).into_owned();
    let _ = tokenize(&src);
    let script = parse(&src);
    assert!(
        script.commands.len() <= MAX_COMMANDS,
        "{} commands",
        script.commands.len()
    );
    for (i, c) in script.commands.iter().enumerate() {
        assert!(c.depth <= MAX_DEPTH + 1, "depth {}", c.depth);
        for &s in &c.sources {
            assert!(s < script.commands.len(), "command {i} reads from {s}");
        }
        let _ = script.upstream(i);
        assert_eq!(
            c.program,
            c.program.to_ascii_lowercase(),
            "program names are lower-case"
        );
    }
    let again = parse(&src);
    assert_eq!(
        format!("{:?}", script.commands),
        format!("{:?}", again.commands)
    );
    // A pattern and a name from the same bytes.
    let cut = src
        .char_indices()
        .map(|(i, _)| i)
        .find(|&i| i >= split.min(src.len()))
        .unwrap_or(src.len());
    let (pattern, name) = src.split_at(cut);
    let _ = glob_match(pattern, name);
    let _ = program_name(pattern, true);
}
