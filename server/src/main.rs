//! `infoshare-server`: run the broker.

#[global_allocator]
static ALLOCATOR: infoshare_server::process::Allocator = infoshare_server::process::Allocator;

fn main() -> std::process::ExitCode {
    infoshare_server::cli::main()
}
