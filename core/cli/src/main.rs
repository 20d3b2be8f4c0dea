use std::process::ExitCode;

fn main() -> ExitCode {
    cascade::output::stop_on_closed_output();
    let log = cascade::output::init();
    let code = cascade::cli::main();
    log.flush(cascade::output::FLUSH_WAIT);
    code
}
