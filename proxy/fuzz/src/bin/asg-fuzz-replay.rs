//! `asg-fuzz-replay <target> <file>...`: run saved inputs (AFL++ crashes,
//! regressions) through a target without instrumentation; reports each.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((name, files)) = args.split_first() else {
        eprintln!("usage: asg-fuzz-replay <target> <file>...");
        std::process::exit(2);
    };
    let Some(target) = asg_fuzz::target(name) else {
        eprintln!("unknown target {name}");
        std::process::exit(2);
    };
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = 0;
    for f in files {
        let data = match std::fs::read(f) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("{f}: {e}");
                failed += 1;
                continue;
            }
        };
        match std::panic::catch_unwind(|| target(&data)) {
            Ok(()) => println!("ok      {f}"),
            Err(e) => {
                failed += 1;
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let first = msg.lines().next().unwrap_or_default();
                println!("FAILED  {f}: {first}");
            }
        }
    }
    std::process::exit(i32::from(failed > 0));
}
