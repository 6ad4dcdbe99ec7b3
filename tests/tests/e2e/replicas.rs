//! Several brokers on one PostgreSQL log, as separate processes on one database: what is
//! submitted through one is delivered on another's stream, and `kill -9` of one under load loses
//! nothing that was acknowledged while the other goes on and the CLI's stream moves to it.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infoshare_certs_dev::Role;
use infoshare_client::Client;
use infoshare_tests::sample_request;

use crate::common::{TestEnv, auditor_verifies};

const WORKERS: usize = 4;
const PER_WORKER: usize = 25;

/// What a worker had acknowledged: idempotency key → request id; and how long after the kill
/// its first acknowledgement came.
type Acked = (HashMap<String, String>, Option<Duration>);

/// Submits `PER_WORKER` requests through the first of `servers` that answers, moving to the
/// next (and retrying the same key) when a call fails.
async fn worker(
    servers: String,
    identity: infoshare_client::Identity,
    name: usize,
    done: Arc<AtomicUsize>,
    killed: Arc<Mutex<Option<Instant>>>,
) -> Acked {
    let mut client = Client::connect(&servers, &identity).await.unwrap();
    let mut acked = HashMap::new();
    let mut after_kill = None;
    for i in 0..PER_WORKER {
        let key = format!("w{name}-{i}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let sent = loop {
            match client
                .submit_request(sample_request("rangitoto-school-board"), &key)
                .await
            {
                Ok(sent) => break sent,
                Err(e) => {
                    assert!(Instant::now() < deadline, "{key} never acknowledged: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Ok(next) = Client::connect(&servers, &identity).await {
                        client = next;
                    }
                }
            }
        };
        let kill = *killed.lock().unwrap();
        if let (Some(at), None) = (kill, after_kill) {
            after_kill = Some(at.elapsed());
        }
        acked.insert(key, sent.request_id);
        done.fetch_add(1, Ordering::SeqCst);
    }
    (acked, after_kill)
}

/// The request ids a `--json inbox --follow` process printed so far, in order.
fn follow(env: &TestEnv, servers: &str) -> (std::process::Child, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_infoshare-cli-under-test"))
        .env(
            "INFOSHARE_IDENTITY",
            env.identity_dir(Role::Agency, "rangitoto-school-board"),
        )
        .env("INFOSHARE_SERVER", servers)
        .args(["--json", "inbox", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let lines = std::io::BufReader::new(child.stdout.take().unwrap());
    let into = seen.clone();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if let Ok(item) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(id) = item["request_id"].as_str()
            {
                into.lock().unwrap().push(id.to_string());
            }
        }
    });
    (child, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_on_one_log_deliver_across_and_lose_nothing_when_one_is_killed() {
    let Some(env) = TestEnv::on_postgres("").await else {
        return;
    };
    let a = env.start().await;
    let b = env.start_bare();
    let (a_first, b_first) = (
        format!("{},{}", a.url(), b.url()),
        format!("{},{}", b.url(), a.url()),
    );

    // Delivery across brokers: the school's stream on B, the police's request through A.
    let school_on_b = b.agency(&env, "rangitoto-school-board").await;
    let mut stream = school_on_b.subscribe_inbox(0).await.unwrap();
    let police_on_a = a.agency(&env, "police").await;
    let sent_at = Instant::now();
    let first = police_on_a
        .submit_request(sample_request("rangitoto-school-board"), "across")
        .await
        .unwrap();
    let item = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("delivered through the other broker")
        .unwrap()
        .unwrap();
    let across = sent_at.elapsed();
    assert_eq!(item.request_id, first.request_id);

    // The CLI follows the inbox on A (B next); four clients submit, two through each broker.
    let (mut follower, printed) = follow(&env, &a_first);
    let identity = env.identity(Role::Agency, "police");
    let done = Arc::new(AtomicUsize::new(0));
    let killed = Arc::new(Mutex::new(None));
    let workers: Vec<_> = (0..WORKERS)
        .map(|n| {
            let servers = if n % 2 == 0 { &a_first } else { &b_first };
            tokio::spawn(worker(
                servers.clone(),
                identity.clone(),
                n,
                done.clone(),
                killed.clone(),
            ))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < WORKERS * PER_WORKER / 3 {
        assert!(Instant::now() < until, "the load did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill9();
    *killed.lock().unwrap() = Some(Instant::now());
    let mut acked = HashMap::new();
    let mut failover = Duration::ZERO;
    for w in workers {
        let (keys, after_kill) = w.await.unwrap();
        failover = failover.max(after_kill.expect("acknowledged after the kill"));
        acked.extend(keys);
    }
    acked.insert("across".into(), first.request_id.clone());
    let ids: HashSet<&String> = acked.values().collect();
    assert_eq!(ids.len(), WORKERS * PER_WORKER + 1, "one request per key");
    assert!(failover < Duration::from_secs(5), "{failover:?}");

    // Every acknowledged request is in the log and the inbox; the CLI's stream moved to B and
    // printed each exactly once.
    let mut listed = HashSet::new();
    let mut after = 0;
    loop {
        let page = school_on_b.list_inbox(after, 100, false).await.unwrap();
        listed.extend(page.items.iter().map(|i| i.request_id.clone()));
        if !page.more {
            break;
        }
        after = page.next_cursor;
    }
    for id in &ids {
        assert!(
            listed.contains(*id),
            "{id} acknowledged but not in the inbox"
        );
    }
    let until = Instant::now() + Duration::from_secs(20);
    while printed.lock().unwrap().len() < ids.len() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = follower.kill();
    let _ = follower.wait();
    let printed = printed.lock().unwrap().clone();
    let unique: HashSet<&String> = printed.iter().collect();
    assert_eq!(
        unique.len(),
        printed.len(),
        "the follower printed an item twice"
    );
    for id in &ids {
        assert!(unique.contains(*id), "{id} never reached the following CLI");
    }

    // The log verifies online (through B, as an auditor) and offline; A, restarted, signs the
    // same checkpoint as B.
    let audit = tempfile::tempdir().unwrap();
    auditor_verifies(&env, &b, audit.path());
    let (ok, said) = env.verify_log();
    assert!(ok, "{said}");
    let a_again = env.start_bare();
    auditor_verifies(&env, &a_again, audit.path());
    eprintln!(
        "across brokers: {across:?}; {} requests acknowledged, all kept; first acknowledgement \
         after kill -9 within {failover:?}",
        ids.len()
    );
}
