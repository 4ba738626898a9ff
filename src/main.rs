/// mimalloc: the request path allocates many small, short-lived objects (parsed JSON bodies,
/// headers, audit records); glibc's malloc showed as a fifth of the policy path's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dockgate::cli::main()
}
