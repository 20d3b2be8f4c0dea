//! A `cascade serve` whose PostgreSQL goes away for a while (issue 18): a
//! restart, a failover or a broken network. The serve keeps running,
//! answers acknowledgements meanwhile with 503 (try again) rather than
//! taking what it cannot record, and once the database is back it records
//! what it sent meanwhile and goes on: everyone gets the message once, and
//! nothing is sent twice.
//!
//! The database sits behind a TCP proxy in this test, which the test cuts:
//! every connection it carries is dropped, and every new one is dropped as
//! soon as it is made, as a restarting server or a broken network does.

#![cfg(unix)]

#[path = "serve_support/mod.rs"]
mod serve_support;

use cascade_store::pg::test_server::TestPostgres;
use serve_support::{Server, delivery, delivery_files, journal, paced_project, post, succeed};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PEOPLE: usize = 3_000;
const ROLLOUT: &str = "outage";
/// How long the database is away: longer than the store's wait for a
/// connection (set to 2 s here), so queries fail rather than wait it out.
const OUTAGE: Duration = Duration::from_secs(12);
/// Acknowledgements posted once the database is back.
const ACKS: usize = 20;

/// A TCP proxy in front of the test PostgreSQL that the test can cut off.
struct Proxy {
    port: u16,
    /// Whether it carries connections, and the sockets it carries: one
    /// lock, so no connection slips through a cut.
    state: Arc<Mutex<(bool, Vec<TcpStream>)>>,
}

impl Proxy {
    fn start(to: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new((true, Vec::new())));
        let carried = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut state = carried.lock().unwrap();
                if !state.0 {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                state.1.push(client.try_clone().unwrap());
                state.1.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Proxy { port, state }
    }

    /// Drops every connection carried, and every new one until restored.
    fn cut(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 = false;
        for socket in state.1.drain(..) {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.state.lock().unwrap().0 = true;
    }
}

/// Copies one way until either side closes, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// The first delivery file's person and token not in `taken`.
fn a_delivery(outbox: &std::path::Path, taken: &BTreeMap<String, String>) -> (String, String) {
    for entry in fs::read_dir(outbox).unwrap() {
        if let Some((person, Some(token))) = delivery(&entry.unwrap().path())
            && !taken.contains_key(&person)
        {
            return (person, token);
        }
    }
    panic!("no delivery file left to acknowledge");
}

#[test]
fn a_serve_rides_out_its_database_going_away_and_sends_each_message_once() {
    cascade_test_support::short_panics();
    let began = Instant::now();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let direct = runtime.block_on(server.new_database()).unwrap();
    let proxy = Proxy::start(server.port());
    let through = format!("127.0.0.1:{}/", proxy.port);
    let url = direct.replacen(&format!("127.0.0.1:{}/", server.port()), &through, 1);
    assert!(url.contains(&through), "{direct}");

    let tmp = tempfile::tempdir().unwrap();
    // Paced, so the outage lands mid-rollout.
    let (project, people) = paced_project(
        tmp.path(),
        "outage",
        PEOPLE,
        100,
        &format!("url = \"{url}\"\nconnect_timeout = \"2s\""),
    );
    succeed(&["import", "--project", "outage"], tmp.path());
    let rollout = cascade::bench::write_urgent_rollout(&project, "outage", ROLLOUT);
    succeed(
        &[
            "rollout",
            "start",
            "--project",
            "outage",
            rollout.to_str().unwrap(),
        ],
        tmp.path(),
    );

    let outbox = project.join("outbox");
    let mut serve = Server::spawn(&project, tmp.path().join("serve.log"));
    let started = Instant::now();
    while journal(&outbox).len() < 300 {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "nothing sent within 300 s:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The database goes away mid-rollout.
    proxy.cut();
    let cut = Instant::now();
    let at_cut = journal(&outbox).len();
    println!("cut at {:.1?}, {at_cut} sent", began.elapsed());
    let mut acked = BTreeMap::new();
    let (person, token) = a_delivery(&outbox, &acked);
    // Not taken, since it cannot be recorded: the person is asked to try
    // again.
    assert_eq!(
        post(&serve.address, &format!("/ack/{token}"), "10.1.0.1"),
        Some(503),
        "an acknowledgement while the database is away"
    );
    std::thread::sleep(OUTAGE.saturating_sub(cut.elapsed()));
    assert!(
        serve.child.try_wait().unwrap().is_none(),
        "the serve stopped while its database was away:\n{}",
        serve.log()
    );
    let during = journal(&outbox).len() - at_cut;
    println!("sent while the database was away: {during} (those in flight at the cut)");
    assert!(
        serve.log().contains("the database does not answer"),
        "{}",
        serve.log()
    );
    proxy.restore();
    println!("restored at {:.1?}", began.elapsed());

    // Tried again, the acknowledgement is taken.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = post(&serve.address, &format!("/ack/{token}"), "10.1.0.1");
        if status == Some(200) {
            break;
        }
        assert_eq!(
            status,
            Some(503),
            "an acknowledgement as the database comes back"
        );
        assert!(
            Instant::now() < deadline,
            "acknowledgements still refused 60 s after the database came back:\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    acked.insert(person, token);

    let deadline = Instant::now() + Duration::from_secs(300);
    while delivery_files(&outbox) < PEOPLE {
        assert!(
            serve.child.try_wait().unwrap().is_none(),
            "the serve stopped after the database came back:\n{}",
            serve.log()
        );
        assert!(
            Instant::now() < deadline,
            "{} of {PEOPLE} deliveries written within 300 s of the database coming back:\n{}",
            delivery_files(&outbox),
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for n in 0..ACKS {
        let (person, token) = a_delivery(&outbox, &acked);
        assert_eq!(
            post(
                &serve.address,
                &format!("/ack/{token}"),
                &format!("10.2.0.{n}")
            ),
            Some(200)
        );
        acked.insert(person, token);
    }
    std::thread::sleep(Duration::from_secs(1));
    assert!(serve.child.try_wait().unwrap().is_none(), "{}", serve.log());
    let log = serve.stop();
    assert!(log.contains("the database answers again after"), "{log}");

    // Everyone has exactly one delivery, and nothing was written twice.
    let mut recipients: BTreeMap<String, u32> = BTreeMap::new();
    for entry in fs::read_dir(&outbox).unwrap() {
        if let Some((person, _)) = delivery(&entry.unwrap().path()) {
            *recipients.entry(person).or_default() += 1;
        }
    }
    assert!(recipients.values().all(|n| *n == 1));
    assert_eq!(recipients.keys().cloned().collect::<BTreeSet<_>>(), people);
    let lines = journal(&outbox);
    assert_eq!(
        lines.len(),
        PEOPLE,
        "writes journalled: a message sent twice after the outage"
    );

    // What was sent while the database was away was recorded once it was
    // back: no row is left leased, every one is sent; each acknowledgement
    // is recorded once.
    let (leased, sent, acks, acked_people): (i64, i64, i64, i64) = runtime.block_on(async {
        use sqlx::Connection;
        let mut pg = sqlx::PgConnection::connect(&direct).await.unwrap();
        let (leased, sent): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'leased'), count(*) FILTER (WHERE sent_at IS NOT NULL)
               FROM outbox WHERE rollout_id = $1",
        )
        .bind(ROLLOUT)
        .fetch_one(&mut pg)
        .await
        .unwrap();
        let (acks, people): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT person_id) FROM acknowledgements WHERE rollout_id = $1",
        )
        .bind(ROLLOUT)
        .fetch_one(&mut pg)
        .await
        .unwrap();
        (leased, sent, acks, people)
    });
    assert_eq!(leased, 0, "rows left leased");
    assert_eq!(sent, PEOPLE as i64, "rows recorded as sent");
    assert_eq!(
        (acks, acked_people),
        (acked.len() as i64, acked.len() as i64)
    );
    println!("took {:.1?}", began.elapsed());
}
