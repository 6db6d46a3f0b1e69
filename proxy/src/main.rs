// jemalloc (tikv-jemallocator, background purge threads on). Measured
// side by side with `make bench-compare` against glibc on the same build:
// less CPU per proxied request (1 KiB: -13 to -14 % with ASG_AUDIT_SYNC=always,
// -8 % with decisions, in two runs) and less resident memory after the run
// (83-112 MiB against 123-175 MiB). mimalloc was tried earlier and dropped: its
// per-thread heaps held memory per connection (530 MB resident at 32
// connections, 1 GB at 128).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(asg::cli::main());
}
