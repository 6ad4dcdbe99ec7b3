//! The open-loop phases: full round trips offered at a fixed rate, each latency counted from its
//! scheduled time (so stalls are not hidden by coordinated omission), for the broker and, as the
//! baseline of the same run, for the raw mTLS echo offered the same way.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Clients, PAIRS, Samples, answer, cpu_secs, echo};
use infoshare_tests::sample_request;

/// Offers `rate` starts a second for `secs`; at each, `trip(i, scheduled)` makes two calls one
/// after the other and gives the µs from `scheduled` to the end of each. Returns both sets, and
/// the line of the CPU the process spent a trip (client and server together), named `what`.
async fn offer<F, Fut>(rate: u64, secs: u64, what: &str, trip: F) -> (Samples, Samples, String)
where
    F: Fn(u64, Instant) -> Fut + Send + 'static,
    Fut: Future<Output = (u64, u64)> + Send + 'static,
{
    let total = rate * secs;
    let cpu_before = cpu_secs();
    // Trips are started by a blocking task of their own that sleeps to each scheduled time:
    // tokio's timer has a resolution of 1 ms, so starting them from `sleep_until` started each
    // up to 1 ms late, and that lateness, counted from the scheduled time, was charged to the
    // server.
    let handle = tokio::runtime::Handle::current();
    let start = Instant::now() + Duration::from_millis(50);
    let tasks = tokio::task::spawn_blocking(move || {
        let mut tasks = Vec::with_capacity(total as usize);
        for i in 0..total {
            let scheduled = start + Duration::from_micros(offset_us(i, rate));
            if let Some(ahead) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(ahead);
            }
            tasks.push(handle.spawn(trip(i, scheduled)));
        }
        tasks
    })
    .await
    .unwrap();
    let (mut first, mut second) = (Samples::default(), Samples::default());
    for t in tasks {
        let (a, b) = t.await.unwrap();
        first.0.push(a);
        second.0.push(b);
    }
    let cpu = cpu_secs() - cpu_before;
    if let Some(path) = std::env::var_os("INFOSHARE_BENCH_TRIPS") {
        write_trips(&path, what, rate, start, &first, &second);
    }
    let cpu = format!(
        "open-loop cpu {what} @{rate}/s   {:.2} of the cores, {:.1} µs a trip (client and server together)",
        cpu / secs as f64,
        cpu * 1e6 / total.max(1) as f64
    );
    (first, second, cpu)
}

/// When trip `i` is due at `rate` a second, in µs from the phase's start.
fn offset_us(i: u64, rate: u64) -> u64 {
    i * 1_000_000 / rate
}

/// Appends each trip of a phase to `path`, one line each: `<what> <rate> <start> <offset>
/// <first> <second>` — the phase's start in µs of the Unix epoch (to line the trips up with
/// samples taken outside the process), the trip's scheduled offset from it and its two
/// latencies, in µs. For finding where a tail's trips fall in time.
fn write_trips(
    path: &std::ffi::OsStr,
    what: &str,
    rate: u64,
    start: Instant,
    first: &Samples,
    second: &Samples,
) {
    use std::fmt::Write as _;
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let start_us = since_epoch
        .as_micros()
        .saturating_sub(start.elapsed().as_micros());
    let mut out = String::new();
    for (i, (a, b)) in first.0.iter().zip(&second.0).enumerate() {
        let offset = offset_us(i as u64, rate);
        let _ = writeln!(out, "{what} {rate} {start_us} {offset} {a} {b}");
    }
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, out.as_bytes()));
    if let Err(e) = appended {
        eprintln!("infoshare-bench: cannot write the trips to {path:?}: {e}");
    }
}

/// Offers `rate` full round trips (submit, then respond) a second for `secs` and prints the
/// submit and round-trip latencies.
pub(super) async fn broker(clients: &Arc<Clients>, rate: u64, secs: u64) {
    let clients = clients.clone();
    let (mut submit, mut round_trip, cpu) = offer(rate, secs, "broker", move |i, scheduled| {
        let clients = clients.clone();
        async move {
            let (from, to) = PAIRS[(i % 4) as usize];
            let key = format!("open-{rate}-{i}");
            let sent = clients.by_agency[from]
                .submit_request(sample_request(to), &key)
                .await
                .unwrap();
            let submit = scheduled.elapsed().as_micros() as u64;
            clients.by_agency[to]
                .respond(&sent.request_id, answer(to))
                .await
                .unwrap();
            (submit, scheduled.elapsed().as_micros() as u64)
        }
    })
    .await;
    println!(
        "{}",
        submit.line(&format!("open-loop submit @{rate}/s"), secs as f64)
    );
    println!("{}", round_trip.line("open-loop round trip", secs as f64));
    println!("{cpu}");
}

/// The baseline of [`broker`]: the same offered load of two calls a trip, each a bare echo
/// over the same mTLS (the closed-loop echo's 4 connections; the broker's trips use 5, one an
/// agency); prints the first call's latency, the floor under a submit's on this machine at
/// this rate.
pub(super) async fn echo_baseline(channels: &[tonic::transport::Channel], rate: u64, secs: u64) {
    let clients: Vec<_> = channels
        .iter()
        .map(|c| echo::echo_service_client::EchoServiceClient::new(c.clone()))
        .collect();
    let (mut first, _, cpu) = offer(rate, secs, "echo", move |i, scheduled| {
        let mut c = clients[(i % clients.len() as u64) as usize].clone();
        async move {
            let mut call = async || {
                c.echo(echo::EchoRequest {
                    payload: vec![7; 512],
                })
                .await
                .unwrap();
                scheduled.elapsed().as_micros() as u64
            };
            (call().await, call().await)
        }
    })
    .await;
    println!(
        "{}",
        first.line(&format!("open-loop echo @{rate}/s"), secs as f64)
    );
    println!("{cpu}");
}
