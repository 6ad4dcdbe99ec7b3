//! The broker binary the end-to-end tests start (the same code as `infoshare-server`; it lives
//! in this package so that `CARGO_BIN_EXE_infoshare-server-under-test` points at it).
//!
//! Its one difference: when `INFOSHARE_TEST_CLOCK_FILE` is set, the broker's clock is the wall
//! clock plus the number of milliseconds in that file (read at each use), so tests can move
//! time forward (retention) without waiting.

#[global_allocator]
static ALLOCATOR: infoshare_server::process::Allocator = infoshare_server::process::Allocator;

fn main() -> std::process::ExitCode {
    let clock = if std::env::var_os(CLOCK_FILE).is_some() {
        infoshare_server::clock::Clock::from_fn(shifted_clock)
    } else {
        infoshare_server::clock::Clock::system()
    };
    infoshare_server::cli::main_with(clock)
}

const CLOCK_FILE: &str = "INFOSHARE_TEST_CLOCK_FILE";

fn shifted_clock() -> u64 {
    let offset: i64 = std::env::var_os(CLOCK_FILE)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    infoshare_server::clock::system_ms().saturating_add_signed(offset)
}
