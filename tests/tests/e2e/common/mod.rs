//! Starts real infoshare servers on 127.0.0.1 (port 0) with a freshly generated PKI in a
//! tempdir, as separate processes so they can be killed with SIGKILL.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use infoshare_certs_dev::{Principal, Role};
use infoshare_client::{Client, Identity};

/// A duration of whole days, as the PKI helpers take it.
pub(crate) fn time_days(days: i64) -> infoshare_certs_dev::Duration {
    infoshare_certs_dev::Duration::days(days)
}

/// An agency with a certificate from the right CA but absent from the registry.
pub(crate) const UNREGISTERED: &str = "ghost-agency";

/// A test environment: PKI, registry, configuration and data directory in one tempdir, and
/// the log there (embedded) or in a throwaway PostgreSQL cluster.
pub(crate) struct TestEnv {
    root: tempfile::TempDir,
    /// The cluster and the URL of the log's database, when the log is in PostgreSQL.
    postgres: Option<(infoshare_tests::pg_cluster::PgCluster, String)>,
}

/// The case `$case(env)` as two tests, `$case::on_embedded` and `$case::on_postgres` (skipped,
/// loudly, where PostgreSQL is not installed), each on a `TestEnv` whose server configuration
/// ends with `$config` (TOML; none if not given).
macro_rules! on_both_engines {
    ($case:ident) => {
        on_both_engines!($case, "");
    };
    ($case:ident, $config:expr) => {
        mod $case {
            use super::*;
            #[tokio::test]
            async fn on_embedded() {
                super::$case(TestEnv::with_config($config)).await
            }
            #[tokio::test]
            async fn on_postgres() {
                if let Some(env) = TestEnv::on_postgres($config).await {
                    super::$case(env).await
                }
            }
        }
    };
}
pub(crate) use on_both_engines;

impl TestEnv {
    pub(crate) fn new() -> Self {
        Self::with_config("")
    }

    /// An environment whose log is in a new database of a throwaway PostgreSQL cluster, its
    /// server configuration ending with `extra`; `None` where PostgreSQL is not installed.
    pub(crate) async fn on_postgres(extra: &str) -> Option<Self> {
        let cluster = infoshare_tests::pg_cluster::PgCluster::start()?;
        let settings = cluster.database().await;
        let storage = format!(
            "\n[storage]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\n",
            settings.url,
            cluster.password_file().display()
        );
        let mut env = Self::with_config(&format!("{extra}{storage}"));
        env.postgres = Some((cluster, settings.url));
        Some(env)
    }

    /// An environment whose server configuration ends with `extra` (TOML).
    pub(crate) fn with_config(extra: &str) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let registry = root.path().join("registry.toml");
        std::fs::write(&registry, infoshare_server::registry::SAMPLE_REGISTRY).unwrap();
        let mut principals = infoshare_certs_dev::principals_from_registry(&registry).unwrap();
        principals.push(Principal::new(Role::Agency, UNREGISTERED));
        infoshare_certs_dev::ensure(&root.path().join("pki"), &principals, false).unwrap();
        // An empty CRL to start with; tests revoke by rewriting it and sending SIGHUP.
        infoshare_certs_dev::write_crl(
            &root.path().join("pki"),
            &[],
            &root.path().join("crl.pem"),
            time_days(30),
        )
        .unwrap();
        let config = "listen = \"127.0.0.1:0\"\n\
             data_dir = \"data\"\n\
             [tls]\n\
             ca = \"pki/ca/ca.pem\"\n\
             cert = \"pki/server/cert.pem\"\n\
             key = \"pki/server/key.pem\"\n\
             crl = [\"crl.pem\"]\n\
             [registry]\n\
             agencies = \"registry.toml\"\n";
        std::fs::write(root.path().join("server.toml"), format!("{config}{extra}")).unwrap();
        Self {
            root,
            postgres: None,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Every file bodies are stored in: the log's segments, or, for a log in PostgreSQL, every
    /// file of the cluster (tables, indexes and write-ahead log).
    pub(crate) fn body_store_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        match &self.postgres {
            Some((cluster, _)) => walk(&cluster.dir().join("data"), &mut files),
            None => walk(&self.data_dir().join("log"), &mut files),
        }
        files
    }

    /// Whether some broker holds the PostgreSQL log's sequencer lease (its advisory lock).
    pub(crate) async fn sequencer_lease_held(&self) -> bool {
        /// The engine's key for the lock ("infosh" then 2), as `writer::SEQUENCER_LOCK`.
        const SEQUENCER_LOCK: i64 = 0x696e_666f_7368_0002;
        let (cluster, url) = self.postgres.as_ref().expect("on PostgreSQL");
        let mut config: tokio_postgres::Config = url.parse().unwrap();
        config.password(std::fs::read_to_string(cluster.password_file()).unwrap());
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        let held: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&SEQUENCER_LOCK],
            )
            .await
            .unwrap()
            .get(0);
        drop(client);
        let _ = driver.await;
        held > 0
    }

    /// The bytes bodies are stored in: on PostgreSQL its data files, all together; on the
    /// embedded engine the payloads of the log's attachments (not the records, nor the zeros
    /// written ahead of them).
    pub(crate) fn body_bytes(&self) -> Vec<u8> {
        if self.postgres.is_none() {
            let mut out = Vec::new();
            infoshare_server::store::embedded::segment::scan_attachments(
                &self.data_dir().join("log"),
                infoshare_server::store::ledger::LOG_MAGIC,
                |_, payload| out.extend_from_slice(payload),
            )
            .unwrap();
            assert!(!out.is_empty(), "no bodies in the log");
            return out;
        }
        let files = self.body_store_files();
        assert!(!files.is_empty(), "no body store files");
        // A file may go between listing and reading it (PostgreSQL recycles its own).
        files
            .into_iter()
            .flat_map(|f| std::fs::read(f).unwrap_or_default())
            .collect()
    }

    pub(crate) fn identity_dir(&self, role: Role, id: &str) -> PathBuf {
        infoshare_certs_dev::identity_dir(&self.root.path().join("pki"), &Principal::new(role, id))
    }

    pub(crate) fn identity(&self, role: Role, id: &str) -> Identity {
        Identity::from_dir(self.identity_dir(role, id)).unwrap()
    }

    /// Starts a server on this environment's data, with the example protocols registered (by
    /// `registry-admin`) and approved (by `privacy-officer`) through the admin API if the
    /// register is empty.
    pub(crate) async fn start(&self) -> TestServer {
        let server = self.start_bare();
        let admin = server.client(self, Role::Admin, "registry-admin").await;
        if admin.list_protocols().await.unwrap().protocols.is_empty() {
            for document in infoshare_server::protocol::model::EXAMPLES {
                server.register_and_approve(self, document).await;
            }
        }
        server
    }

    /// Sets environment variables for servers started on this environment from now on.
    pub(crate) fn set_server_env(&self, vars: &[(&str, &str)]) {
        let text: String = vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(self.root.path().join("server.env"), text).unwrap();
    }

    /// Moves the clock of servers on this environment forward by `days` (a running server
    /// sees it at its next reading).
    pub(crate) fn advance_clock(&self, days: u64) {
        let path = self.root.path().join("clock-offset-ms");
        let now: i64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        std::fs::write(&path, (now + days as i64 * 86_400_000).to_string()).unwrap();
    }

    /// Sets the clock of servers on this environment to `unix_ms` now (it then runs on with the
    /// wall clock).
    pub(crate) fn set_clock_at(&self, unix_ms: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let path = self.root.path().join("clock-offset-ms");
        std::fs::write(&path, (unix_ms as i64 - now).to_string()).unwrap();
    }

    /// Starts a server on this environment's data, as it is.
    pub(crate) fn start_bare(&self) -> TestServer {
        TestServer::start(self.root.path())
    }

    /// Runs the server binary with `args` to completion (e.g. `--verify-log`).
    /// Runs `--verify-log` on this environment's data: whether it passed, and what it said.
    pub(crate) fn verify_log(&self) -> (bool, String) {
        if let Some((cluster, url)) = &self.postgres {
            return self.verify_log_at(
                url,
                &std::fs::read_to_string(cluster.password_file()).unwrap(),
            );
        }
        said(&self.run_server(&["--verify-log", self.data_dir().to_str().unwrap()]))
    }

    /// Runs `--verify-log` on the PostgreSQL log at `url` (its keys in this environment's data
    /// directory): whether it passed, and what it said.
    pub(crate) fn verify_log_at(&self, url: &str, password: &str) -> (bool, String) {
        let keys = self.data_dir().join("keys");
        said(
            &Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
                .args(["--verify-log", url, "--keys-dir", keys.to_str().unwrap()])
                .env("PGPASSWORD", password)
                .output()
                .unwrap(),
        )
    }

    pub(crate) fn run_server(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
            .args(args)
            .output()
            .unwrap()
    }
}

/// Whether a command succeeded, and all it printed.
fn said(out: &std::process::Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A running server process; killed when dropped.
pub(crate) struct TestServer {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    /// The log verifier key the server printed at start-up.
    pub verifier_key: String,
}

impl TestServer {
    // The child is moved into the TestServer, whose Drop kills and waits for it.
    #[allow(clippy::zombie_processes)]
    fn start(root: &Path) -> Self {
        let log = root.join(format!(
            "server-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let extra_env: Vec<(String, String)> = std::fs::read_to_string(root.join("server.env"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_infoshare-server-under-test"))
            .envs(extra_env)
            .arg("--config")
            .arg(root.join("server.toml"))
            .env("RUST_LOG", "info")
            // The broker's clock is shifted by the milliseconds in this file (none: not shifted).
            .env("INFOSHARE_TEST_CLOCK_FILE", root.join("clock-offset-ms"))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start server");
        // The server prints its log verifier key, then the address once it is ready.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut verifier_key = String::new();
        loop {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            let line = line.trim();
            if let Some(key) = line.strip_prefix("infoshare-server log verifier key ") {
                verifier_key = key.to_string();
            } else if let Some(addr) = line.strip_prefix("infoshare-server listening on ") {
                return Self {
                    addr: addr.parse().unwrap(),
                    child,
                    log,
                    verifier_key,
                };
            } else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "server did not start: {line:?}\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }

    /// Registers `document` (as `registry-admin`) and approves it (as `privacy-officer`).
    pub(crate) async fn register_and_approve(&self, env: &TestEnv, document: &str) {
        let admin = self.client(env, Role::Admin, "registry-admin").await;
        let approver = self.client(env, Role::Admin, "privacy-officer").await;
        let draft = admin
            .register_protocol(document)
            .await
            .unwrap()
            .protocol
            .unwrap();
        approver
            .approve_protocol(&draft.protocol_id, draft.version, "Chief Privacy Officer")
            .await
            .unwrap();
    }

    /// `https://localhost:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    pub(crate) async fn client(&self, env: &TestEnv, role: Role, id: &str) -> Client {
        Client::connect(&self.url(), &env.identity(role, id))
            .await
            .expect("connect")
    }

    pub(crate) async fn agency(&self, env: &TestEnv, id: &str) -> Client {
        self.client(env, Role::Agency, id).await
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    pub(crate) fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends the server a signal (`HUP`, `TERM`, …).
    pub(crate) fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name}");
    }

    /// Waits (up to `secs`) for the server to exit; its exit status.
    pub(crate) async fn wait_exit(mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 5 s) until the server's log contains `text`; panics with the log if not.
    pub(crate) async fn wait_for_log(&self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.log().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "log lacks {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The server's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `infoshare audit verify` as the auditor against `server`, pinning (and proving consistency
/// with) the checkpoint kept in `state_dir`; panics with what the CLI said unless it passes.
pub(crate) fn auditor_verifies(env: &TestEnv, server: &TestServer, state_dir: &Path) {
    let state = [("INFOSHARE_AUDIT_STATE", state_dir.join("audit.state"))];
    let out = run_cli(
        env,
        server,
        (Role::Auditor, "privacy-audit"),
        &state,
        &["--json", "audit", "verify"],
    );
    assert!(
        out.status.success(),
        "audit verify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the CLI as `role`/`id` against `server`, with `extra` environment variables.
pub(crate) fn run_cli(
    env: &TestEnv,
    server: &TestServer,
    (role, id): (Role, &str),
    extra: &[(&str, PathBuf)],
    args: &[&str],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_infoshare-cli-under-test"));
    command
        .env("INFOSHARE_IDENTITY", env.identity_dir(role, id))
        .env("INFOSHARE_SERVER", server.url());
    for (k, v) in extra {
        command.env(k, v);
    }
    command.args(args).output().expect("run the CLI")
}

/// Runs the CLI as agency `agency` against `server`.
pub(crate) fn cli(
    env: &TestEnv,
    server: &TestServer,
    agency: &str,
    args: &[&str],
) -> std::process::Output {
    run_cli(env, server, (Role::Agency, agency), &[], args)
}

/// The one JSON object a CLI run printed; panics if it failed.
pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// What a CLI run printed; panics if it failed.
pub(crate) fn text(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The one line a failed CLI run printed on stderr; panics if it succeeded.
pub(crate) fn failure(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}
