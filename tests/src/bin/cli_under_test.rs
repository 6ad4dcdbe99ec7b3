//! The `infoshare` CLI the end-to-end tests run (the same code as the `infoshare` binary).

fn main() -> std::process::ExitCode {
    infoshare_client::cli::main()
}
