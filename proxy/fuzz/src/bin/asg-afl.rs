//! The AFL++ harness: `asg-afl <target>` (see `make fuzz`).

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = asg_fuzz::target(&name) else {
        let names: Vec<&str> = asg_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: asg-afl <target>; targets: {}", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
