fn main() -> std::process::ExitCode {
    hub::cli::main(hub_levels::command(), hub_levels::run)
}
