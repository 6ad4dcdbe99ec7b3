//! `infoshare-certs-dev`: make the development PKI (see the library docs for the layout).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Make a development root CA, a server certificate and one client certificate per principal in
/// the registry. Existing keys are kept unless --force.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Registry file whose [[agency]], [[auditor]] and [[admin]] ids get certificates.
    #[arg(long, default_value = "core/samples/sample-registry.toml")]
    registry: PathBuf,
    /// Output directory.
    #[arg(long, default_value = "certs-dev/out")]
    out: PathBuf,
    /// Replace existing keys and certificates.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = infoshare_certs_dev::principals_from_registry(&args.registry)
        .and_then(|ps| infoshare_certs_dev::ensure(&args.out, &ps, args.force));
    match result {
        Ok(report) => {
            println!(
                "{}: {} files written, {} identities kept",
                args.out.display(),
                report.written.len(),
                report.kept.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
