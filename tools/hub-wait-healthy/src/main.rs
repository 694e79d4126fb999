fn main() -> std::process::ExitCode {
    hub::cli::main(hub_wait_healthy::run)
}
