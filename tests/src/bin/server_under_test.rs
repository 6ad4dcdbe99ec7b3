//! The broker binary the end-to-end tests start (the same code as `infoshare-server`; it lives
//! in this package so that `CARGO_BIN_EXE_infoshare-server-under-test` points at it).

fn main() -> std::process::ExitCode {
    infoshare_server::cli::main()
}
