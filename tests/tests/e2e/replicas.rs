//! Several brokers on one PostgreSQL log, as separate processes on one database: what is
//! submitted through one is delivered on another's stream, and `kill -9` of one under load loses
//! nothing that was acknowledged while the other goes on and the CLI's stream moves to it; one
//! that hangs holding the sequencer lease loses it within seconds.

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

/// Every request id in `client`'s inbox, page by page.
async fn inbox_ids(client: &Client) -> HashSet<String> {
    let mut listed = HashSet::new();
    let mut after = 0;
    loop {
        let page = client.list_inbox(after, 100, false).await.unwrap();
        listed.extend(page.items.iter().map(|i| i.request_id.clone()));
        if !page.more {
            return listed;
        }
        after = page.next_cursor;
    }
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
    let listed = inbox_ids(&school_on_b).await;
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

/// Submits through `server` until `stop` is set; the request ids it had acknowledged.
async fn submit_until(
    server: String,
    identity: infoshare_client::Identity,
    name: &'static str,
    stop: Arc<std::sync::atomic::AtomicBool>,
    done: Arc<AtomicUsize>,
) -> Vec<String> {
    let mut acked = Vec::new();
    let Ok(client) = Client::connect(&server, &identity).await else {
        return acked;
    };
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("{name}-{i}");
        i += 1;
        if let Ok(sent) = client
            .submit_request(sample_request("rangitoto-school-board"), &key)
            .await
        {
            acked.push(sent.request_id);
            done.fetch_add(1, Ordering::SeqCst);
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_hangs_holding_the_lease_loses_it_and_the_other_goes_on() {
    let Some(env) = TestEnv::on_postgres("").await else {
        return;
    };
    let a = env.start().await;
    let b = env.start_bare();
    let identity = env.identity(Role::Agency, "police");

    // A under load holds the sequencer lease nearly all the time; it is stopped (SIGSTOP: its
    // process and its connections stay, as a hung or cut-off broker's would).
    let (stop, done) = (
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let on_a: Vec<_> = ["a0", "a1"]
        .into_iter()
        .map(|name| {
            tokio::spawn(submit_until(
                a.url(),
                identity.clone(),
                name,
                stop.clone(),
                done.clone(),
            ))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < until, "the load on A did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Stopped while it holds the lease (it gives it up between its turns, and when idle).
    let mut attempts = 0;
    loop {
        a.signal("STOP");
        if env.sequencer_lease_held().await {
            break;
        }
        a.signal("CONT");
        attempts += 1;
        assert!(attempts < 50, "A never seen holding the lease");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stopped = Instant::now();

    // B takes the lease once PostgreSQL has ended A's idle session, and goes on.
    let police_on_b = b.agency(&env, "police").await;
    let mut through_b = Vec::new();
    let taken_over = loop {
        match police_on_b
            .submit_request(sample_request("rangitoto-school-board"), "through-b")
            .await
        {
            Ok(sent) => {
                through_b.push(sent.request_id);
                break stopped.elapsed();
            }
            Err(e) => {
                assert!(
                    stopped.elapsed() < Duration::from_secs(30),
                    "B never wrote while A hung: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // The writer's idle limit (10 s), then the lease.
    assert!(taken_over < Duration::from_secs(15), "{taken_over:?}");
    for i in 0..5 {
        let sent = police_on_b
            .submit_request(sample_request("rangitoto-school-board"), &format!("b-{i}"))
            .await
            .unwrap();
        through_b.push(sent.request_id);
    }

    // A resumes: what it acknowledged, before or after, is in the log with B's writes, and
    // the log verifies.
    a.signal("CONT");
    stop.store(true, Ordering::SeqCst);
    let mut acked = through_b.clone();
    for w in on_a {
        acked.extend(
            tokio::time::timeout(Duration::from_secs(40), w)
                .await
                .expect("A's submitters end once it resumes")
                .unwrap(),
        );
    }
    // Resumed, A finds its session ended: it writes again under a new lease, or, if a batch of
    // its was in flight, refuses writes until restarted (that batch failed unacknowledged).
    let police_on_a = a.agency(&env, "police").await;
    let resumed = match police_on_a
        .submit_request(sample_request("rangitoto-school-board"), "a-resumed")
        .await
    {
        Ok(sent) => {
            acked.push(sent.request_id);
            "wrote again"
        }
        Err(e) => {
            assert!(
                e.to_string().contains("writes refused until restart"),
                "{e}"
            );
            "refused writes until restart"
        }
    };
    let school_on_b = b.agency(&env, "rangitoto-school-board").await;
    let listed = inbox_ids(&school_on_b).await;
    for id in &acked {
        assert!(
            listed.contains(id),
            "{id} acknowledged but not in the inbox"
        );
    }
    let audit = tempfile::tempdir().unwrap();
    auditor_verifies(&env, &b, audit.path());
    let (ok, said) = env.verify_log();
    assert!(ok, "{said}");
    eprintln!(
        "B wrote {taken_over:?} after A was stopped holding the lease; {} acknowledged, all \
         kept; A, resumed, {resumed}",
        acked.len()
    );
}
