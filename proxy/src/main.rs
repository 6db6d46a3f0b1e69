/// mimalloc instead of the system allocator: inspection allocates many
/// small, short-lived strings across worker threads, where glibc malloc
/// spends a quarter of the admin API's CPU time (see `proxy/benches/detect.rs`
/// and the perf notes in the detection report).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(asg::cli::main());
}
