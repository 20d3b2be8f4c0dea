//! Acknowledgement POSTs per second through the real HTTP endpoint: the
//! `ack_router` served by axum on 127.0.0.1, a SQLite store in a file, and a
//! load generator of keep-alive HTTP/1.1 connections written by hand over
//! `TcpStream`. Each acknowledgement is committed before its response; every
//! round checks the store holds exactly one per request. Baselines in the
//! same run: `GET /health` over the same connections, and the same POSTs to
//! a second server whose store does not append to the evidence chain (the
//! test-support `without_evidence_chain`). Each round is cut into slices
//! the two servers take in turns (which goes first alternating), and each
//! pair of slices gives one ratio, so the chain's cost is measured against
//! the same machine at the same moment; the figure is the median of those
//! paired ratios, with its quartiles (goal: under 10% fewer POSTs a second).
//!
//! With `CASCADE_BENCH_POSTGRES=1` the two servers are one on PostgreSQL
//! (a server the bench starts on loopback with PostgreSQL's default
//! durability) and one on SQLite, both appending to the chain (issue 18).
//!
//! `cargo bench --bench ack_http`; `CASCADE_BENCH_ACKS` (per round, default
//! 20000) and `CASCADE_BENCH_CONNECTIONS` (default 32) change the load;
//! `CASCADE_BENCH_DIR` puts the database elsewhere (default: a temporary
//! folder under the system's, on disk here).

use cascade::bench::median;
use cascade_engine::ack::AckKeys;
use cascade_engine::project::{Project, scaffold};
use cascade_model::content::parse_item;
use cascade_model::rollout::StepKind;
use cascade_server::{Clock, ServerState, ack_router};
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgSettings, PgStore};
use cascade_store::{
    AllStores, Inspect, MemberAdvance, NewDelivery, NewMember, NewRollout, SqliteStore,
};
use chrono::{DateTime, TimeZone, Utc};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ITEM: &str = "7mb-neglect-seeing-the-child";
const ROUNDS: usize = 3;
/// Slices a round is cut into for the paired comparison of the chain.
const SLICES: usize = 10;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
}

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Connection {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// Sends a request without a body and reads the whole response; returns
    /// its status.
    async fn request(&mut self, method: &str, path: &str) -> u16 {
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n");
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .unwrap();
        self.line.clear();
        self.stream.read_line(&mut self.line).await.unwrap();
        let status: u16 = self.line[9..12].parse().unwrap();
        let mut length = 0usize;
        loop {
            self.line.clear();
            self.stream.read_line(&mut self.line).await.unwrap();
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await.unwrap();
        status
    }
}

/// Sends one request per path over `connections` connections; returns the
/// requests per second.
async fn drive(
    addr: SocketAddr,
    method: &'static str,
    paths: Arc<Vec<String>>,
    connections: usize,
) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let mut conns = Vec::new();
    for _ in 0..connections {
        conns.push(Connection::open(addr).await);
    }
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut conn| {
            let (next, paths) = (next.clone(), paths.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let status = conn.request(method, path).await;
                    assert_eq!(status, 200, "{method} {path}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    paths.len() as f64 / started.elapsed().as_secs_f64()
}

/// Which store a server of the bench keeps its acknowledgements in.
enum Kind {
    /// SQLite in a file, appending to the evidence chain or not.
    Sqlite { chained: bool },
    /// PostgreSQL at this URL (a server with its default durability).
    Postgres(String),
}

/// One server over its own store, with a rollout a round ready to be
/// acknowledged: its address, store and the rounds' paths.
async fn prepare(
    dir: &Path,
    name: &str,
    kind: Kind,
    acks: usize,
) -> (SocketAddr, Arc<dyn Recorded>, Vec<Arc<Vec<String>>>) {
    match kind {
        Kind::Sqlite { chained } => {
            let store = SqliteStore::open(&dir.join(format!("{name}.db")).to_string_lossy())
                .await
                .unwrap();
            let store = if chained {
                store
            } else {
                store.without_evidence_chain()
            };
            prepare_on(dir, name, Arc::new(store), acks).await
        }
        Kind::Postgres(url) => {
            let store = PgStore::connect(&PgSettings::new(url)).await.unwrap();
            prepare_on(dir, name, Arc::new(store), acks).await
        }
    }
}

/// A count on its way.
type BoxedCount<'a> = std::pin::Pin<Box<dyn Future<Output = usize> + Send + 'a>>;

/// What the bench reads back from either store.
trait Recorded: Send + Sync {
    fn recorded<'a>(&'a self, round: usize) -> BoxedCount<'a>;
    fn chained<'a>(&'a self) -> BoxedCount<'a>;
}

impl<S: AllStores + Inspect> Recorded for S {
    fn recorded<'a>(&'a self, round: usize) -> BoxedCount<'a> {
        Box::pin(async move {
            let rollout = format!("bench-{round}");
            self.acknowledgements()
                .await
                .unwrap()
                .iter()
                .filter(|a| a.rollout_id.as_deref() == Some(rollout.as_str()))
                .count()
        })
    }

    fn chained<'a>(&'a self) -> BoxedCount<'a> {
        Box::pin(async move {
            let report = self.verify_chain().await.unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems.first());
            report.events as usize
        })
    }
}

async fn prepare_on<S: AllStores + Inspect>(
    dir: &Path,
    name: &str,
    store: Arc<S>,
    acks: usize,
) -> (SocketAddr, Arc<dyn Recorded>, Vec<Arc<Vec<String>>>) {
    let root = dir.join(format!("project-{name}"));
    scaffold(&root).unwrap();
    let project = Project::open(&root).unwrap();
    let path = project.content_dir().join(format!("{ITEM}.md"));
    // A bare POST acknowledges only an item without check questions (one
    // with them is answered 422 with the questions): the bench measures
    // acknowledgements, not answers.
    let text =
        cascade_test_support::without_check_questions(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    let item = parse_item(&path, &text, &project.taxonomy).unwrap();
    store.save_item(&item, &text).await.unwrap();

    // One rollout a round, each member with one delivery, so every POST
    // is a first acknowledgement (a real insert and member update).
    let keys = AckKeys::new(("k1".to_owned(), vec![7; 32]), Vec::new(), 60).unwrap();
    let t = cascade_engine::delivery::millis(now());
    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        let rollout = format!("bench-{round}");
        let people: Vec<String> = (0..acks).map(|i| format!("p{round}-{i:06}")).collect();
        let members: Vec<NewMember> = people
            .iter()
            .map(|p| NewMember {
                person_id: p.clone(),
                wave: 0,
                first_due_at: t,
            })
            .collect();
        store
            .create_rollout(NewRollout {
                id: &rollout,
                item_id: ITEM,
                item_version: &item.version.0,
                definition: "{}",
                members: &members,
                audience: None,
                now: t,
                team_posts: &[],
            })
            .await
            .unwrap();
        let rows: Vec<NewDelivery> = people
            .iter()
            .map(|p| NewDelivery {
                idempotency_key: format!("{rollout}/{p}"),
                rollout_id: rollout.clone(),
                person_id: p.clone(),
                recipient_id: p.clone(),
                wave: 0,
                step_kind: StepKind::Initial,
                step_number: 0,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: t,
            })
            .collect();
        let advances: Vec<MemberAdvance> = people
            .iter()
            .map(|p| MemberAdvance {
                rollout_id: rollout.clone(),
                person_id: p.clone(),
                next_step: 1,
                next_due_at: None,
                shift_days: None,
            })
            .collect();
        store.materialise(&rows, &advances, t).await.unwrap();
        let paths: Vec<String> = store
            .rollout_outbox(&rollout)
            .await
            .unwrap()
            .iter()
            .map(|r| format!("/ack/{}", keys.sign(r.id, &r.person_id, now())))
            .collect();
        rounds.push(Arc::new(paths));
    }

    let clock: Clock = Arc::new(now);
    let state = ServerState::new(
        store.clone(),
        Arc::new(keys),
        project.taxonomy.clone(),
        chrono_tz::Europe::London,
        clock,
    )
    .with_rate_limit(None);
    let app = ack_router(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The accept loop `cascade serve` runs, with its default limits.
    tokio::spawn(async move {
        let limits = cascade_server::ServerConfig::default();
        cascade_server::serve(listener, app, &limits, std::future::pending()).await
    });
    (addr, store, rounds)
}

fn main() {
    let acks = env_or("CASCADE_BENCH_ACKS", 20_000);
    let connections = env_or("CASCADE_BENCH_CONNECTIONS", 32);
    // CASCADE_BENCH_POSTGRES=1: PostgreSQL (a server the bench starts,
    // with its default durability) against SQLite, both with the chain.
    let postgres = std::env::var_os("CASCADE_BENCH_POSTGRES").is_some();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = match std::env::var_os("CASCADE_BENCH_DIR") {
            Some(parent) => tempfile::tempdir_in(parent).unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let _server;
        let (first, second, label_a, label_b) = if postgres {
            let server = TestPostgres::durable().unwrap_or_else(|e| panic!("{e}"));
            let url = server.new_database().await.unwrap();
            _server = Some(server);
            (
                Kind::Postgres(url),
                Kind::Sqlite { chained: true },
                "on PostgreSQL",
                "on SQLite",
            )
        } else {
            _server = None;
            (
                Kind::Sqlite { chained: true },
                Kind::Sqlite { chained: false },
                "with the evidence chain",
                "without",
            )
        };
        let (addr, store, rounds) = prepare(dir.path(), "a", first, acks).await;
        let (plain_addr, plain_store, plain_rounds) =
            prepare(dir.path(), "b", second, acks).await;

        let health = Arc::new(vec!["/health".to_owned(); acks * 5]);
        let (mut ack_rates, mut plain_rates, mut health_rates) =
            (Vec::new(), Vec::new(), Vec::new());
        let mut pair_costs = Vec::new();
        for (round, (paths, plain_paths)) in rounds.into_iter().zip(plain_rounds).enumerate() {
            // Each round in SLICES slices, the two servers taking turns
            // slice by slice (and which goes first alternating), so a
            // change of load on this shared machine falls on both alike;
            // each pair of slices gives one paired ratio.
            let size = paths.len().div_ceil(SLICES);
            let (mut a_secs, mut b_secs) = (0.0, 0.0);
            for (slice, (part, plain_part)) in
                paths.chunks(size).zip(plain_paths.chunks(size)).enumerate()
            {
                let (part, plain_part) = (Arc::new(part.to_vec()), Arc::new(plain_part.to_vec()));
                let (a, p) = if (round * SLICES + slice).is_multiple_of(2) {
                    let a = drive(addr, "POST", part.clone(), connections).await;
                    (a, drive(plain_addr, "POST", plain_part.clone(), connections).await)
                } else {
                    let p = drive(plain_addr, "POST", plain_part.clone(), connections).await;
                    (drive(addr, "POST", part.clone(), connections).await, p)
                };
                a_secs += part.len() as f64 / a;
                b_secs += plain_part.len() as f64 / p;
                pair_costs.push(1.0 - a / p);
            }
            let (ack_rate, plain_rate) =
                (paths.len() as f64 / a_secs, plain_paths.len() as f64 / b_secs);
            assert_eq!(store.recorded(round).await, acks, "every POST committed one acknowledgement");
            assert_eq!(plain_store.recorded(round).await, acks, "every POST committed one acknowledgement");
            let health_rate = drive(addr, "GET", health.clone(), connections).await;
            println!(
                "round {round}: {ack_rate:>8.0} ack POSTs/s {label_a}, {plain_rate:>8.0} {label_b}, {health_rate:>8.0} health GETs/s"
            );
            ack_rates.push(ack_rate);
            plain_rates.push(plain_rate);
            health_rates.push(health_rate);
        }
        assert_eq!(store.chained().await, acks * ROUNDS, "every acknowledgement chained");
        if postgres {
            assert_eq!(plain_store.chained().await, acks * ROUNDS, "every acknowledgement chained");
        }
        let (ack_rate, plain_rate, health_rate) =
            (median(ack_rates), median(plain_rates), median(health_rates));
        println!(
            "median of {ROUNDS}: {ack_rate:.0} ack POSTs/s {label_a}, {health_rate:.0} health GETs/s, ratio {:.1}x ({acks} acks a round, {connections} connections)",
            health_rate / ack_rate
        );
        let pairs = pair_costs.len();
        pair_costs.sort_by(f64::total_cmp);
        let (low, high) = (pair_costs[pairs / 4], pair_costs[pairs * 3 / 4]);
        if postgres {
            println!(
                "PostgreSQL against SQLite, rounds: {ack_rate:.0} ack POSTs/s on PostgreSQL, {plain_rate:.0} on SQLite: {:.2}x",
                ack_rate / plain_rate
            );
            println!(
                "PostgreSQL against SQLite, {pairs} paired slices: median {:.2}x (quartiles {:.2}x to {:.2}x)",
                1.0 - median(pair_costs),
                1.0 - high,
                1.0 - low
            );
        } else {
            println!(
                "evidence chain, rounds: {ack_rate:.0} ack POSTs/s with it, {plain_rate:.0} without: {:.1}% fewer",
                (1.0 - ack_rate / plain_rate) * 100.0
            );
            println!(
                "evidence chain, {pairs} paired slices: median {:.1}% fewer POSTs/s with it (quartiles {:.1}% to {:.1}%; goal: under 10%)",
                median(pair_costs) * 100.0,
                low * 100.0,
                high * 100.0
            );
        }
    });
}
