//! The `infoshare-server` command line.

use crate::clock::Clock;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::server;
use clap::Parser;

/// The infoshare broker: mutual-TLS gRPC, TLS 1.3 only.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long, required_unless_present_any = ["dev", "verify_log", "new_body_key", "copy_log"], conflicts_with_all = ["dev", "verify_log", "new_body_key", "copy_log"])]
    config: Option<PathBuf>,
    /// Add a new body key to this data directory (the broker stopped): bodies sealed from the
    /// next start use it; the older keys still open what they sealed.
    #[arg(long, value_name = "DATA_DIR", conflicts_with_all = ["dev", "verify_log"])]
    new_body_key: Option<PathBuf>,
    /// Verify the log in this data directory, or in the PostgreSQL database at this
    /// `postgresql://` URL (password from PGPASSWORD; TLS with PGSSLROOTCERT), offline (checksums, encodings, and the
    /// Merkle root against the last signed checkpoint), print the result and exit.
    #[arg(long, value_name = "DATA_DIR|URL", conflicts_with = "dev")]
    verify_log: Option<PathBuf>,
    /// Copy the embedded log in this data directory (its broker stopped) into the empty
    /// PostgreSQL database of --to, prove the copy (same size and root, every body present),
    /// print the result and exit.
    #[arg(long, value_name = "DATA_DIR", requires = "to", conflicts_with_all = ["dev", "verify_log", "new_body_key"])]
    copy_log: Option<PathBuf>,
    /// With --copy-log: the `postgresql://` URL to copy into (password from PGPASSWORD; TLS
    /// checked against the CA bundle in PGSSLROOTCERT, if set).
    #[arg(long, value_name = "URL", requires = "copy_log")]
    to: Option<String>,
    /// With --verify-log or --copy-log: the directory of the log's keys (default
    /// `<DATA_DIR>/keys`; required to verify a PostgreSQL log).
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// First-run defaults: make the development PKI in ./certs-dev/out if missing, load the
    /// sample registry, listen on 127.0.0.1:50051, keep data in ./data.
    #[arg(long)]
    dev: bool,
    /// Check the configuration (registry, TLS files, CRLs, data directory, limits), print the
    /// result and exit without serving.
    #[arg(long)]
    check_config: bool,
    /// With --dev: the listen address.
    #[arg(long, requires = "dev", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// With --dev: the data directory.
    #[arg(long, requires = "dev", default_value = "data")]
    data_dir: PathBuf,
}

/// Runs the server command line (what `infoshare-server` does).
pub fn main() -> ExitCode {
    main_with(Clock::system())
}

/// Runs the server command line with the broker on `clock` (a program embedding the server,
/// such as the end-to-end tests' server binary, passes its own).
pub fn main_with(clock: Clock) -> ExitCode {
    crate::process::restrict_file_modes();
    crate::process::return_freed_memory();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // Inside the runtime: the OTLP exporters' channels live on it. Dropped (flushed) before it.
    let telemetry = match runtime.block_on(async { crate::telemetry::init("infoshare-server") }) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = run(&runtime, clock);
    runtime.block_on(async move { drop(telemetry) });
    code
}

/// `--verify-log`: a data directory, or a PostgreSQL URL with its keys directory.
fn verify_log(
    target: &std::path::Path,
    keys_dir: Option<&std::path::Path>,
) -> Result<crate::store::verify::Verified, crate::store::verify::VerifyError> {
    use crate::store::verify::VerifyError;
    let text = target.to_string_lossy();
    if !(text.starts_with("postgresql://") || text.starts_with("postgres://")) {
        return match keys_dir {
            Some(_) => Err(VerifyError::Io(
                "--keys-dir is for a PostgreSQL log; a data directory's keys are in it".into(),
            )),
            None => crate::store::verify::verify_data_dir(target),
        };
    }
    let keys_dir = keys_dir.ok_or_else(|| {
        VerifyError::Io("a PostgreSQL log is verified with --keys-dir (its log keys)".into())
    })?;
    let settings = database(&text);
    settings.check().map_err(VerifyError::Io)?;
    crate::store::postgres::verify_postgres(&settings, keys_dir)
}

/// A database named on the command line: the password from PGPASSWORD, and TLS to it with the
/// CA bundle in PGSSLROOTCERT, if set (libpq's variables).
fn database(url: &str) -> crate::store::postgres::PgSettings {
    let mut settings = crate::store::postgres::PgSettings::new(url);
    settings.ca = std::env::var_os("PGSSLROOTCERT").map(PathBuf::from);
    settings
}

fn run(runtime: &tokio::runtime::Runtime, clock: Clock) -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.new_body_key {
        let keys_dir = dir.join("keys").join("body");
        return match crate::store::seal::BodyKeys::add_key(&keys_dir) {
            Ok(keys) => {
                println!("new body key added in {}: {keys:?}", keys_dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: body key: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let (Some(dir), Some(url)) = (&args.copy_log, &args.to) {
        let keys_dir = args.keys_dir.clone().unwrap_or_else(|| dir.join("keys"));
        let settings = database(url);
        let copied = settings
            .check()
            .and_then(|_| crate::store::copy::embedded_to_postgres(dir, &keys_dir, &settings));
        return match copied {
            Ok(c) => {
                println!(
                    "log copied and proved: {} records, root {}, {} bodies",
                    c.records, c.root, c.bodies
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("log copy FAILED: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.keys_dir.is_some() && args.verify_log.is_none() {
        eprintln!("error: --keys-dir is for --verify-log or --copy-log");
        return ExitCode::FAILURE;
    }
    if let Some(dir) = &args.verify_log {
        return match verify_log(dir, args.keys_dir.as_deref()) {
            Ok(v) => {
                println!(
                    "log verified: {} records; the signed checkpoint of size {} matches",
                    v.records, v.checkpoint_size
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("log verification FAILED: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match &args.config {
        Some(path) => Config::load(path),
        None => dev_config(&args),
    };
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        return match server::check_config(&config) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let result = runtime.block_on(async {
        let prepared = server::prepare(&config, clock).await?;
        #[cfg(feature = "dev")]
        if args.dev {
            crate::dev::bootstrap_dev_protocols(&prepared, std::path::Path::new("certs-dev/out"))
                .await?;
        }
        // Tests and scripts read this line to find the port when listening on port 0.
        println!("infoshare-server listening on {}", prepared.local_addr());
        prepared.serve(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "dev")]
fn dev_config(args: &Args) -> Result<Config, crate::config::ConfigError> {
    Config::dev(&args.data_dir, args.listen)
}

#[cfg(not(feature = "dev"))]
fn dev_config(_: &Args) -> Result<Config, crate::config::ConfigError> {
    Err(crate::config::ConfigError::Dev(
        "this build has no development defaults: build with `--features dev`, or pass --config"
            .into(),
    ))
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Args::command().debug_assert();
    }
}
