// The system allocator, deliberately. mimalloc (tried for detection speed)
// made the inspect API ~10 % faster but the proxy ~20 % slower, and its
// per-thread heaps held memory per connection: 530 MB resident at 32
// connections and 1 GB at 128, against 130 MB and 200 MB with glibc.

fn main() {
    std::process::exit(asg::cli::main());
}
