fn main() -> std::process::ExitCode {
    dockgate::cli::main()
}
