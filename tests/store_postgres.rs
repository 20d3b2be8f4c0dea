//! `cascade store copy --from sqlite --to postgres` and `cascade store
//! migrate` through the binary, against a real PostgreSQL server the test
//! starts on loopback (issue 18).

mod support;

use cascade_store::pg::test_server::TestPostgres;
use support::{OUTBOX, cascade_in, ok, project, text};

fn with_store(dir: &std::path::Path, lines: &str) {
    let path = dir.join("cascade.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    assert!(
        config.contains("\n[store]\n"),
        "the demo has a [store] table"
    );
    std::fs::write(
        path,
        config.replacen("\n[store]\n", &format!("\n[store]\n{lines}\n"), 1),
    )
    .unwrap();
}

#[tokio::test]
async fn a_partnership_is_copied_into_postgresql_once_and_the_commands_then_run_on_it() {
    let dir = project(OUTBOX);
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    with_store(dir.path(), &format!("url = \"{url}\""));

    let out = cascade_in(
        &["store", "copy", "--from", "sqlite", "--to", "postgres"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (said, progress) = (text(&out.stdout), text(&out.stderr));
    assert!(said.starts_with("Copied "), "{said}");
    assert!(said.contains("The SQLite file is unchanged"), "{said}");
    let people = progress
        .lines()
        .find_map(|l| l.trim().strip_prefix("people: "))
        .unwrap_or_else(|| panic!("{progress}"));
    assert!(
        people.trim_end_matches(" rows").parse::<u64>().unwrap() > 0,
        "{progress}"
    );

    // The people are in PostgreSQL.
    use sqlx::Connection;
    let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&mut pg)
        .await
        .unwrap();
    assert_eq!(format!("{n} rows"), people);

    // Once only: a second copy changes nothing and says why.
    let again = cascade_in(
        &["store", "copy", "--from", "sqlite", "--to", "postgres"],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already holds data"),
        "{}",
        text(&again.stderr)
    );

    // The schema is brought up to date on PostgreSQL.
    let migrate = cascade_in(&["store", "migrate"], dir.path());
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(
        text(&migrate.stdout).contains("PostgreSQL"),
        "{}",
        text(&migrate.stdout)
    );

    // The other commands run on PostgreSQL: status reads the copied
    // rollouts from it.
    let status = cascade_in(&["status"], dir.path());
    assert!(status.status.success(), "{}", text(&status.stderr));
    let sqlite_status = {
        let sqlite_dir = project(OUTBOX);
        ok(cascade_in(&["status"], sqlite_dir.path()))
    };
    assert_eq!(text(&status.stdout), sqlite_status);
    let doctor = cascade_in(&["doctor"], dir.path());
    assert!(
        text(&doctor.stdout).contains("PostgreSQL at postgres://"),
        "{}",
        text(&doctor.stdout)
    );

    // A backup of the SQLite file would not be the live store: refused,
    // with PostgreSQL's own tools named.
    let backup = cascade_in(
        &[
            "backup",
            "--out",
            &dir.path().join("b.db").to_string_lossy(),
        ],
        dir.path(),
    );
    assert!(!backup.status.success());
    let why = text(&backup.stderr);
    assert!(
        why.contains("works on the SQLite file only") && why.contains("pg_dump"),
        "{why}"
    );

    // Only this direction is supported.
    let back = cascade_in(
        &["store", "copy", "--from", "postgres", "--to", "sqlite"],
        dir.path(),
    );
    assert!(!back.status.success());
    assert!(text(&back.stderr).contains("only --from sqlite --to postgres"));
}

#[test]
fn a_password_in_the_store_url_stops_every_command_at_its_line_without_echoing_it() {
    let dir = project(OUTBOX);
    with_store(
        dir.path(),
        "url = \"postgres://cascade:Sekr1t@db.example/cascade\"",
    );
    for args in [&["store", "migrate"][..], &["status"][..]] {
        let out = cascade_in(args, dir.path());
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("cascade.toml:") && err.contains("CASCADE_STORE_PASSWORD"),
            "{err}"
        );
        assert!(!err.contains("Sekr1t"), "{err}");
    }
}

#[test]
fn an_unreachable_database_is_named_with_what_to_check() {
    let dir = project(OUTBOX);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    with_store(
        dir.path(),
        &format!("url = \"postgres://cascade@127.0.0.1:{port}/cascade\"\nconnect_timeout = \"2s\""),
    );
    let out = cascade_in(&["store", "migrate"], dir.path());
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("check that it is running"),
        "{err}"
    );
}
