fn main() -> std::process::ExitCode {
    hub::cli::main(hub_report::command(), hub_report::run)
}
