fn main() -> std::process::ExitCode {
    hub::cli::main(hub_levels::run)
}
