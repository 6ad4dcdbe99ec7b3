//! A throwaway PostgreSQL cluster for one test: `initdb` in a tempdir, `postgres` on a free
//! loopback port with password (SCRAM) authentication, stopped when dropped. PostgreSQL refuses
//! to run as root, so as root the cluster runs as the `postgres` user (or `nobody`).
//!
//! Where the server binaries are absent, [`PgCluster::start`] says so loudly and gives `None`,
//! so the test skips; with `INFOSHARE_REQUIRE_POSTGRES=1` (CI sets it) that is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use infoshare_server::store::postgres::PgSettings;

const SUPERUSER: &str = "infoshare";
const PASSWORD: &str = "throwaway-test-password";

/// A running cluster.
pub struct PgCluster {
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    root: tempfile::TempDir,
    server: Child,
    databases: AtomicU32,
}

/// The directory of `initdb`, `postgres` and `pg_ctl`: `INFOSHARE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<v>/bin` (Debian's packages), else `PATH`.
fn server_binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("INFOSHARE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn user_exists(name: &str) -> bool {
    Command::new("id")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

impl PgCluster {
    /// A new cluster, or `None` (said on stderr) if PostgreSQL's server binaries are absent and
    /// `INFOSHARE_REQUIRE_POSTGRES` is not set.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// As [`start`](Self::start), serving TLS with this certificate chain and key (PEM) besides
    /// plaintext, so a test can tell which its clients use (`pg_stat_ssl`).
    pub fn start_with_tls(cert: &Path, key: &Path) -> Option<Self> {
        Self::start_with(Some((cert, key)))
    }

    fn start_with(tls: Option<(&Path, &Path)>) -> Option<Self> {
        let Some(bin) = server_binaries() else {
            assert!(
                std::env::var_os("INFOSHARE_REQUIRE_POSTGRES").is_none(),
                "INFOSHARE_REQUIRE_POSTGRES is set but PostgreSQL's server binaries (initdb, postgres) \
                 are not installed: apt-get install postgresql, or set INFOSHARE_PG_BIN"
            );
            eprintln!(
                "\n*** SKIPPED: PostgreSQL's server binaries (initdb, postgres) are not installed; \
                 this test did not run. apt-get install postgresql, or set INFOSHARE_PG_BIN ***\n"
            );
            return None;
        };
        let run_as = is_root().then(|| {
            if user_exists("postgres") {
                "postgres"
            } else {
                "nobody"
            }
            .to_string()
        });
        let root = tempfile::tempdir().expect("tempdir");
        let pwfile = root.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_string(),
            "max_connections=100".into(),
            "shared_buffers=32MB".into(),
            "fsync=on".into(),
        ];
        if let Some((cert, key)) = tls {
            // PostgreSQL wants its key owned by itself and private.
            let (c, k) = (
                root.path().join("tls-cert.pem"),
                root.path().join("tls-key.pem"),
            );
            std::fs::copy(cert, &c).unwrap();
            std::fs::copy(key, &k).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600)).unwrap();
            settings.push("ssl=on".into());
            settings.push(format!("ssl_cert_file={}", c.display()));
            settings.push(format!("ssl_key_file={}", k.display()));
        }
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(root.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the cluster's directory to {user}");
        }
        let cluster_cmd = |program: &str| {
            let mut cmd = match &run_as {
                Some(user) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", user, "--"]).arg(bin.join(program));
                    c
                }
                None => Command::new(bin.join(program)),
            };
            cmd.current_dir(root.path());
            cmd
        };
        let data = root.path().join("data");
        let out = cluster_cmd("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = std::fs::File::create(root.path().join("server.log")).unwrap();
        let server = cluster_cmd("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(root.path())
            .args(["-p", &port.to_string()])
            .args(settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("postgres starts");
        let cluster = Self {
            bin,
            run_as,
            port,
            root,
            server,
            databases: AtomicU32::new(0),
        };
        cluster.wait_ready();
        Some(cluster)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start within 60 s: {}",
                std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The password file brokers use to connect (as a configuration's `password_file`).
    pub fn password_file(&self) -> PathBuf {
        self.root.path().join("pwfile")
    }

    /// The URL of database `name` (no password in it).
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// A new, empty database, and the settings to reach it.
    pub async fn database(&self) -> PgSettings {
        let name = format!(
            "infoshare_{}",
            self.databases.fetch_add(1, Ordering::SeqCst)
        );
        let mut config: tokio_postgres::Config = self.url("postgres").parse().expect("a URL");
        config.password(PASSWORD);
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        drop(client);
        let _ = driver.await;
        let mut settings = PgSettings::new(self.url(&name));
        settings.password_file = Some(self.password_file());
        settings
    }

    /// A plain client of the database `settings` reach (the test cluster takes no TLS), and the
    /// task driving its connection (it ends once the client is dropped).
    pub async fn client(
        settings: &PgSettings,
    ) -> (tokio_postgres::Client, tokio::task::JoinHandle<()>) {
        let (client, connection) = settings
            .connection()
            .expect("the settings' connection")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the test cluster");
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        (client, driver)
    }

    /// The cluster's directory (its server log is `server.log`).
    pub fn dir(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let mut stop = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(self.bin.join("pg_ctl"));
                c
            }
            None => Command::new(self.bin.join("pg_ctl")),
        };
        let stopped = stop
            .arg("-D")
            .arg(self.root.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
    }
}
