fn main() -> std::process::ExitCode {
    hub::cli::main(hub_start::run)
}
