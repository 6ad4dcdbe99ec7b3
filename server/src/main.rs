//! `infoshare-server`: run the broker.

fn main() -> std::process::ExitCode {
    infoshare_server::cli::main()
}
