//! `infoshare`: the command-line client of the infoshare broker.

fn main() -> std::process::ExitCode {
    infoshare_client::cli::main()
}
