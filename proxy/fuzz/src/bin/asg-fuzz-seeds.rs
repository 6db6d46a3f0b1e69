//! `asg-fuzz-seeds <target> <folder>`: write the target's seeds there.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(target), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: asg-fuzz-seeds <target> <folder>");
        std::process::exit(2);
    };
    if asg_fuzz::target(target).is_none() {
        eprintln!("unknown target {target}");
        std::process::exit(2);
    }
    let dir = std::path::Path::new(dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let seeds = asg_fuzz::seeds::seeds(target);
    for (i, s) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{i:03}"));
        if let Err(e) = std::fs::write(&path, s) {
            eprintln!("cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    println!("{} seeds for {target} in {}", seeds.len(), dir.display());
}
