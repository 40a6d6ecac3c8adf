use std::process::ExitCode;

fn main() -> ExitCode {
    bantin::cli::main()
}
