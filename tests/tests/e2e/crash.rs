//! Crash cycles: start the server, drive concurrent load, SIGKILL it at a random moment,
//! restart, and check that every acknowledged submit survived (in the log, in the recipient's
//! inbox, with its body) and that the log verifies. CI runs a few cycles; `scripts/crash-cycles.sh`
//! runs many (INFOSHARE_CRASH_CYCLES).

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestEnv;
use infoshare_tests::sample_request;

/// A small xorshift generator: the seed is printed, so a failing run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

async fn inbox_ids(server: &common::TestServer, env: &TestEnv) -> BTreeSet<String> {
    let school = server.agency(env, "rangitoto-school-board").await;
    let mut ids = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = school.list_inbox(after, 500, false).await.unwrap();
        for item in &page.items {
            assert!(
                item.request.is_some() && !item.body_purged,
                "body of {} missing",
                item.request_id
            );
            ids.insert(item.request_id.clone());
        }
        after = page.next_cursor;
        if !page.more {
            return ids;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_submits_survive_repeated_kill_9() {
    let cycles: usize = std::env::var("INFOSHARE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed = std::env::var("INFOSHARE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash cycles: {cycles}, seed {seed}");
    let mut rng = Rng(seed);
    let env = TestEnv::new();
    let acked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let mut total_attempts = 0;
    for cycle in 0..cycles {
        let server = env.start().await;
        let police = server.agency(&env, "police").await;
        let mut tasks = Vec::new();
        for worker in 0..8 {
            let police = police.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                let mut attempts = 0;
                for n in 0.. {
                    let key = format!("c{cycle}-w{worker}-{n}");
                    attempts += 1;
                    match police
                        .submit_request(sample_request("rangitoto-school-board"), &key)
                        .await
                    {
                        Ok(r) => {
                            acked.lock().unwrap().insert(r.request_id);
                        }
                        Err(_) => break, // the server died under us
                    }
                }
                attempts
            }));
        }
        let delay = 30 + rng.next() % 300;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        for t in tasks {
            total_attempts += t.await.unwrap();
        }
        let (ok, out) = env.verify_log();
        assert!(ok, "cycle {cycle} (seed {seed}): {out}");
    }
    let server = env.start().await;
    let present = inbox_ids(&server, &env).await;
    let acked = acked.lock().unwrap().clone();
    let lost: Vec<_> = acked.difference(&present).collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: {} acknowledged requests lost: {lost:?}",
        lost.len()
    );
    assert!(!acked.is_empty());
    eprintln!(
        "{} acknowledged of {total_attempts} attempts over {cycles} kill -9 cycles; all present",
        acked.len()
    );
}
