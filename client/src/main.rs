//! `infoshare`: the command-line client of the infoshare broker.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
