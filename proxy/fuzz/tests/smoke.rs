//! The fuzz targets as ordinary tests (part of `make test`): every seed,
//! every input the fuzzers saved in `proxy/fuzz/regressions/<target>/`
//! (crashes found and fixed), and a few hundred generated inputs per target
//! (random bytes and mutated seeds, from a fixed PRNG so a failure
//! reproduces). Uninstrumented and short; `make fuzz` is the real search.

use asg_fuzz::{seeds, target, TARGETS};
use std::path::Path;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A seed with a few random edits (flip, insert, delete, splice).
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(4) == 0 {
        let n = rng.below(600);
        return (0..n).map(|_| rng.next() as u8).collect();
    }
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 if at < v.len() => v[at] ^= 1 << rng.below(8),
            1 => v.insert(at, rng.next() as u8),
            2 if at < v.len() => {
                v.remove(at);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let len = rng.below(64).min(other.len() - from);
                v.splice(at..at, other[from..from + len].iter().copied());
            }
        }
    }
    v
}

/// Generated inputs per target (`ASG_FUZZ_SMOKE` overrides).
fn generated() -> usize {
    std::env::var("ASG_FUZZ_SMOKE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// Run one input; on failure keep it (to replay with `asg-afl` or add to
/// `regressions/`) and say where.
fn check(name: &str, run: fn(&[u8]), input: &[u8]) {
    let outcome = std::panic::catch_unwind(|| run(input));
    if let Err(e) = outcome {
        let dir = std::env::temp_dir().join("asg-fuzz-smoke");
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join(format!("{name}-failure.bin"));
        let _ = std::fs::write(&path, input);
        std::panic::resume_unwind(Box::new(format!(
            "{name}: failing input saved to {}: {}",
            path.display(),
            e.downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("panic")
        )));
    }
}

fn replay(name: &str) {
    let target_fn = target(name).expect("target");
    let run = |input: &[u8]| check(name, target_fn, input);
    let seeds = seeds::seeds(name);
    assert!(!seeds.is_empty(), "{name} has no seeds");
    for s in &seeds {
        run(s);
    }
    let saved = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("regressions")
        .join(name);
    if let Ok(entries) = std::fs::read_dir(&saved) {
        for e in entries.flatten() {
            run(&std::fs::read(e.path()).expect("regression input"));
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    for _ in 0..generated() {
        let input = mutate(&mut rng, &seeds);
        run(&input);
    }
}

macro_rules! smoke {
    ($($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_has_a_smoke_test() {
            let covered = [$(stringify!($name)),*];
            for (name, _) in TARGETS {
                assert!(covered.contains(name), "{name} has no smoke test");
            }
        }
    };
}

smoke!(
    sse,
    stream,
    dialect,
    redact_json,
    shell,
    decode,
    body_decode,
    policy,
    front,
    ws
);
