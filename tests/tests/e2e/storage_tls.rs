//! TLS from the broker to its PostgreSQL database: with `[storage] ca`, every connection the
//! broker makes is TLS 1.3, and a database whose certificate that CA did not issue is refused.

use crate::common::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_reaches_its_database_over_tls_checked_against_the_configured_ca() {
    let env = TestEnv::new();
    // The database serves the development server certificate (localhost, 127.0.0.1).
    let Some(cluster) = infoshare_tests::pg_cluster::PgCluster::start_with_tls(
        &env.path().join("pki/server/cert.pem"),
        &env.path().join("pki/server/key.pem"),
    ) else {
        return;
    };
    let settings = cluster.database().await;
    let config = env.path().join("server.toml");
    let plain = std::fs::read_to_string(&config).unwrap();
    let with_ca = |ca: &str| {
        format!(
            "{plain}\n[storage]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\nca = \"{ca}\"\n",
            settings.url,
            cluster.password_file().display()
        )
    };
    std::fs::write(&config, with_ca("pki/ca/ca.pem")).unwrap();
    let server = env.start().await;
    let police = server.agency(&env, "police").await;
    police
        .submit_request(
            infoshare_tests::sample_request("rangitoto-school-board"),
            "over-tls",
        )
        .await
        .unwrap();

    let (client, _) = infoshare_tests::pg_cluster::PgCluster::client(&settings).await;
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl AND s.version = 'TLSv1.3') \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = 'infoshare-server' AND a.pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    let (all, tls13): (i64, i64) = (row.get(0), row.get(1));
    assert!(all >= 2, "the broker's connections: {all}");
    assert_eq!(tls13, all, "every connection of the broker is TLS 1.3");
    drop(server);

    // A CA that did not issue the database's certificate: nothing connects.
    let other = TestEnv::new();
    let other_ca = other.path().join("pki/ca/ca.pem");
    std::fs::write(&config, with_ca(other_ca.to_str().unwrap())).unwrap();
    let refused = env.run_server(&["--config", config.to_str().unwrap(), "--check-config"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("certificate"), "{said}");
}
