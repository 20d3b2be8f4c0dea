use std::process::ExitCode;

fn main() -> ExitCode {
    cascade::output::stop_on_closed_output();
    cascade::cli::main()
}
