fn main() {
    std::process::exit(asg::cli::main());
}
