//! PostgreSQL end to end: the corpus captures (facts per capture, and where tshark
//! 4.0 sees less than Reef), the recording in `cases/live-postgresql`, and psql and
//! pgbench against the PostgreSQL running on this machine, captured live on `lo`.
//!
//! tshark differences shown here:
//! - An accepted SSLRequest (`pgsql_zeek_aws-ssl-require`): tshark lists the request
//!   without its one-byte answer; Reef pairs the `S` and says the rest is encrypted.
//! - A refused SSLRequest (`pgsql_arkime_good`): tshark lists it as a request with no
//!   response; Reef tells the refusal with the startup that follows (one entry).
//! - Executions of statements prepared before the capture (`pgsql_deepflow_all`):
//!   tshark has no query for them, so the truth has no transaction; Reef emits each
//!   Execute with its command tag and rows (text unknown, said so).
//! - Query text (`pgsql_deepflow_all`): tshark's view cuts long queries and shows the
//!   UTF-8 comments of one as U+FFFD; Reef keeps the text (up to 8 KiB) as sent.
//!
//! `check_truth.py --proto postgresql` finds all 36 of tshark's queries; its
//! precision (36/66) counts as extra 30 entries without a query text (three
//! startups, a CancelRequest and the 26 executions above), each of which tshark
//! lists too, as a transaction without a query
//! (`entries_without_a_query_are_transactions_tshark_lists_too`, which also covers
//! the captures the checker leaves out because tshark saw no query in them).

use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_schema::{Entry, Protocol};

fn pg(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Postgresql)
        .collect()
}

fn key(e: &Entry) -> (&str, Option<&str>, Option<i32>) {
    (
        e.method.as_deref().unwrap_or(""),
        e.path.as_deref(),
        e.status_code,
    )
}

fn corpus(name: &str) -> Vec<Entry> {
    pg(dissect_file(&corpus_file(name)).0)
}

fn truth(name: &str) -> serde_json::Value {
    let p = reef_integration::corpus_dir().join(format!("{name}.truth.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn simple_queries_in_a_transaction_that_fails() {
    let e = corpus("pgsql_suricata_simple-query-rollback");
    assert_eq!(e.len(), 23);
    assert_eq!(
        e[0].summary.as_deref(),
        Some(
            "SSLRequest refused; Startup user=ju-Test database=Test application_name=psql → ready (authentication: SASL SCRAM-SHA-256)"
        )
    );
    let errors: Vec<_> = e
        .iter()
        .filter(|x| x.status_code == Some(1))
        .map(|x| x.db_error.as_deref().unwrap().split(':').next().unwrap())
        .collect();
    assert_eq!(errors, ["22012", "25P02", "25P02", "25P02", "22012"]);
    // COMMIT of the failed transaction is answered ROLLBACK.
    let commit = e
        .iter()
        .find(|x| x.summary.as_deref() == Some("Query COMMIT; → ROLLBACK"));
    assert!(commit.is_some());
    let last = e.last().unwrap();
    assert_eq!(
        key(last),
        ("Query", Some("SELECT * FROM new_table;"), Some(0))
    );
    assert_eq!(last.db_rows, Some(8));
    assert!(e.iter().all(|x| !x.incomplete));
}

#[test]
fn create_insert_select_delete_drop() {
    let e = corpus("pgsql_zeek_create-insert-select-delete-drop");
    let got: Vec<_> = e.iter().map(key).collect();
    assert_eq!(got[1], ("Query", Some("DROP TABLE IF EXISTS t;"), Some(0)));
    assert_eq!(got.len(), 8);
    let select = &e[5];
    assert_eq!(key(select), ("Query", Some("SELECT * from t;"), Some(0)));
    assert_eq!(select.db_rows, Some(2));
    assert_eq!(e[6].db_rows, Some(2), "DELETE 2");
}

#[test]
fn cancel_request_on_a_second_connection() {
    let e = corpus("pgsql_suricata_cancel-request-rawip");
    let cancel = e
        .iter()
        .find(|x| x.method.as_deref() == Some("CancelRequest"))
        .unwrap();
    assert_eq!(
        cancel.summary.as_deref(),
        Some("CancelRequest for backend 28954")
    );
    let sleep = e
        .iter()
        .find(|x| x.path.as_deref() == Some("select pg_sleep(9)"))
        .unwrap();
    assert_eq!(sleep.status_code, Some(1));
    assert!(
        sleep
            .db_error
            .as_deref()
            .unwrap()
            .starts_with("57014: canceling statement")
    );
    // Cancelled after about a second, not nine.
    assert!((900_000..1_100_000).contains(&sleep.elapsed_time.unwrap()));
    assert_ne!(cancel.src_port, sleep.src_port);
}

#[test]
fn extended_protocol_joined_midway() {
    let e = corpus("pgsql_deepflow_all");
    // 32 Bind/Execute/Sync exchanges: one entry each.
    assert_eq!(e.len(), 32);
    assert!(
        e.iter()
            .all(|x| x.method.as_deref() == Some("Execute") && x.status_code == Some(0))
    );
    let with_text = e.iter().filter(|x| x.path.is_some()).count();
    assert_eq!(with_text, 6, "the statements parsed inside the capture");
    // Statements prepared before the capture: the name is told, the rows counted.
    let s142: Vec<_> = e
        .iter()
        .filter(|x| x.summary.as_deref().unwrap().contains("\"S_142\""))
        .map(|x| x.db_rows)
        .collect();
    assert_eq!(s142, [Some(6), Some(0), Some(0)]);
}

/// tshark differs: its truth has queries cut at about 300 characters with a
/// `...(N chars)` note, and shows the Chinese comment of one as U+FFFD; Reef keeps
/// the whole text (up to 8 KiB) and decodes it.
#[test]
fn tshark_differs_long_queries_are_kept_whole() {
    let t = truth("pgsql_deepflow_all");
    let cut: Vec<String> = t["l7"]["pgsql"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|x| x["queries"].as_array().unwrap().clone())
        .filter_map(|q| q.as_str().map(str::to_string))
        .filter(|q| q.contains("chars)"))
        .collect();
    assert_eq!(cut.len(), 3);
    let e = corpus("pgsql_deepflow_all");
    let long: Vec<_> = e
        .iter()
        .filter_map(|x| x.path.as_deref())
        .filter(|p| p.len() > 500)
        .collect();
    assert_eq!(long.len(), 3);
    assert_eq!(long[0].len(), 3579);
    assert!(long[0].starts_with("select      SERIAL_NO,POLICY_SERIAL_NO"));
    assert!(long[2].contains("--中长期--"));
    assert!(cut[2].contains('\u{FFFD}'));
}

/// tshark differs: it lists the SSLRequest alone, without the server's one-byte
/// answer; Reef pairs the `S` and reads nothing of the TLS that follows.
#[test]
fn tshark_differs_accepted_ssl_request() {
    let t = truth("pgsql_zeek_aws-ssl-require");
    let tx = &t["l7"]["pgsql"]["transactions"][0];
    assert_eq!(tx["frontend_messages"][0], "SSL request");
    assert!(tx["backend"]["first_frame"].is_null());
    let e = corpus("pgsql_zeek_aws-ssl-require");
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), ("SSLRequest", None, Some(0)));
    assert_eq!(e[0].response_size, Some(1));
    assert!(e[0].summary.as_deref().unwrap().contains("encrypted (TLS)"));
    // The handshake that follows is TLS's own entry, with the server name tshark saw.
    let sni = t["l7"]["tls"]["handshakes"][0]["sni"].as_str().unwrap();
    let tls: Vec<Entry> = dissect_file(&corpus_file("pgsql_zeek_aws-ssl-require"))
        .0
        .into_iter()
        .filter(|e| e.protocol == Protocol::Tls)
        .collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(tls[0].tls_sni.as_deref(), Some(sni));
    assert_eq!(tls[0].tls_version.as_deref(), Some("TLS 1.2"));
}

/// tshark differs: two requests (an SSLRequest without response, then the startup);
/// Reef: one startup exchange that says the server refused SSL.
#[test]
fn tshark_differs_refused_ssl_request_is_part_of_the_startup() {
    let t = truth("pgsql_arkime_good");
    assert_eq!(
        t["l7"]["pgsql"]["transactions"].as_array().unwrap().len(),
        2
    );
    let e = corpus("pgsql_arkime_good");
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].summary.as_deref(),
        Some(
            "SSLRequest refused; Startup user=cooluser database=dbdbdbdb application_name=pgAdmin III - Browser → ready (authentication: MD5 password)"
        )
    );
    assert_eq!(e[0].request_size, Some(8 + 80 + 41));
}

fn recorded() -> Vec<Entry> {
    pg(dissect_file(&case_dir("live-postgresql").join("capture.pcap")).0)
}

/// `cases/live-postgresql`: psql, pgbench with prepared statements, TLS.
#[test]
fn recorded_psql_session() {
    let e = recorded();
    let psql: Vec<_> = e.iter().filter(|x| x.src_port == e[0].src_port).collect();
    assert_eq!(psql.len(), 11);
    assert_eq!(psql[0].method.as_deref(), Some("Startup"));
    let q: Vec<_> = psql[1..]
        .iter()
        .map(|x| x.path.as_deref().unwrap())
        .collect();
    assert!(q[0].starts_with("CREATE TABLE reef_pg_"));
    assert!(q[6].starts_with("EXECUTE q(2)"));
    let statuses: Vec<_> = psql[1..].iter().map(|x| x.status_code.unwrap()).collect();
    assert_eq!(statuses, [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    assert!(
        psql[4]
            .db_error
            .as_deref()
            .unwrap()
            .starts_with("23505: duplicate key")
    );
    assert_eq!(psql[5].db_error.as_deref(), Some("22012: division by zero"));
    assert_eq!(psql[3].db_rows, Some(2));
    assert_eq!(
        psql[8]
            .summary
            .as_deref()
            .unwrap()
            .rsplit_once(" → ")
            .unwrap()
            .1,
        "COPY 2"
    );
    assert_eq!(psql[9].db_rows, Some(1), "SELECT count(*) returns one row");
}

#[test]
fn recorded_pgbench_executions_carry_their_statement() {
    let e = recorded();
    let exec: Vec<_> = e
        .iter()
        .filter(|x| x.method.as_deref() == Some("Execute"))
        .map(|x| x.path.as_deref().unwrap())
        .collect();
    // Three transactions of two statements, each parsed once.
    assert_eq!(exec.len(), 6);
    assert_eq!(
        exec.iter()
            .filter(|p| **p == "SELECT $1::int + 1 AS next;")
            .count(),
        3
    );
    let parses = e
        .iter()
        .filter(|x| x.method.as_deref() == Some("Parse"))
        .count();
    assert_eq!(parses, 2);
    let tls = e
        .iter()
        .filter(|x| x.method.as_deref() == Some("SSLRequest"))
        .count();
    assert_eq!(tls, 1);
    assert!(e.iter().all(|x| !x.incomplete));
}

/// Live: psql and pgbench against the PostgreSQL at 127.0.0.1:5432, captured on `lo`
/// while they run. The table is unique to the run and dropped at the end.
mod running_server {
    use std::process::Command;
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{SETTLE, run, run_any, server, tool};

    const PORT: u16 = 5432;

    fn psql(sql: &str, sslmode: &str) -> Command {
        let mut c = Command::new(tool("psql", "postgresql-client"));
        c.args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-c",
            sql,
        ])
        .env("PGSSLMODE", sslmode)
        .env("PGCONNECT_TIMEOUT", "5");
        c
    }

    #[test]
    fn live_psql_and_pgbench() {
        server("127.0.0.1:5432", "PostgreSQL");
        let table = format!("reef_pg_{}", std::process::id());
        let limit = Duration::from_secs(20);
        let script = std::env::temp_dir().join(format!("{table}.pgbench.sql"));
        std::fs::write(
            &script,
            "\\set n random(1, 1000)\nSELECT :n::int + 1 AS next;\n",
        )
        .unwrap();

        let cap = LiveCapture::start("lo");
        run(
            &mut psql(
                &format!("CREATE TABLE {table} (id int PRIMARY KEY)"),
                "disable",
            ),
            limit,
        );
        run(
            &mut psql(
                &format!("INSERT INTO {table} VALUES (1), (2), (3)"),
                "disable",
            ),
            limit,
        );
        // A statement that fails.
        let dup = run_any(
            &mut psql(&format!("INSERT INTO {table} VALUES (1)"), "disable"),
            limit,
        );
        assert!(!dup.status.success());
        run(
            &mut psql(&format!("SELECT id FROM {table} ORDER BY id"), "disable"),
            limit,
        );
        // The extended protocol with named statements.
        run(
            Command::new(tool("pgbench", "postgresql-contrib"))
                .args([
                    "-n",
                    "-M",
                    "prepared",
                    "-c",
                    "1",
                    "-t",
                    "4",
                    "-h",
                    "127.0.0.1",
                ])
                .args(["-U", "postgres", "-f"])
                .arg(&script)
                .arg("test")
                .env("PGSSLMODE", "disable"),
            limit,
        );
        run(&mut psql("SELECT 42", "require"), limit);
        run(&mut psql(&format!("DROP TABLE {table}"), "disable"), limit);
        let (entries, _) = cap.stop(SETTLE);
        let _ = std::fs::remove_file(&script);
        let e: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Postgresql && x.dst_port == Some(PORT))
            .collect();
        let ours = |p: String| {
            let e = &e;
            e.iter()
                .filter(move |x| x.path.as_deref() == Some(p.as_str()))
        };

        let created = ours(format!("CREATE TABLE {table} (id int PRIMARY KEY)"))
            .next()
            .unwrap();
        assert_eq!(created.status_code, Some(0));
        assert_eq!(created.method.as_deref(), Some("Query"));
        let inserted = ours(format!("INSERT INTO {table} VALUES (1), (2), (3)"))
            .next()
            .unwrap();
        assert_eq!(inserted.db_rows, Some(3));
        let dup = ours(format!("INSERT INTO {table} VALUES (1)"))
            .next()
            .unwrap();
        assert_eq!(dup.status_code, Some(1));
        assert!(
            dup.db_error
                .as_deref()
                .unwrap()
                .starts_with("23505: duplicate key value")
        );
        let select = ours(format!("SELECT id FROM {table} ORDER BY id"))
            .next()
            .unwrap();
        assert_eq!(select.db_rows, Some(3));
        assert!(!select.incomplete);
        // Each of pgbench's four executions carries the text parsed once.
        let exec: Vec<_> = ours("SELECT $1::int + 1 AS next;".to_string())
            .map(|x| x.method.as_deref().unwrap())
            .collect();
        assert_eq!(
            exec.iter().filter(|m| **m == "Execute").count(),
            4,
            "{exec:?}"
        );
        assert_eq!(
            exec.iter().filter(|m| **m == "Parse").count(),
            1,
            "{exec:?}"
        );
        // The connection that asked for TLS: one entry, encrypted from there on.
        let startups = |x: &&Entry| x.method.as_deref() == Some("SSLRequest");
        assert!(e.iter().any(|x| startups(&x) && x.status_code == Some(0)));
    }
}

/// The corpus check compares query texts only, so Reef's entries without one
/// (Startup, an accepted SSLRequest, CancelRequest, Execute of a statement prepared
/// before the capture) count as extras there. tshark lists each of them too, as a
/// transaction with no query: this pairs every such Reef entry with one of those, by
/// kind, in every PostgreSQL capture of the corpus.
#[test]
fn entries_without_a_query_are_transactions_tshark_lists_too() {
    let kind = |method: &str| match method {
        "Startup" => "Startup message",
        "SSLRequest" => "SSL request",
        "CancelRequest" => "Cancel request",
        "Execute" => "Execute",
        other => panic!("a PostgreSQL entry without a query, of an unexpected kind: {other}"),
    };
    let mut paired = 0;
    for name in [
        "pgsql_arkime_good",
        "pgsql_deepflow_all",
        "pgsql_suricata_cancel-request-rawip",
        "pgsql_suricata_simple-query-rollback",
        "pgsql_zeek_aws-ssl-require",
        "pgsql_zeek_create-insert-select-delete-drop",
    ] {
        let t = truth(name);
        let mut tshark: Vec<Vec<String>> = t["l7"]["pgsql"]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["queries"].as_array().is_none_or(|q| q.is_empty()))
            .map(|x| {
                x["frontend_messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_string())
                    .collect()
            })
            .collect();
        for e in corpus(name) {
            if e.path.as_deref().is_some_and(|q| !q.trim().is_empty()) {
                continue;
            }
            let want = kind(e.method.as_deref().unwrap_or(""));
            let at = tshark
                .iter()
                .position(|msgs| msgs.iter().any(|m| m == want))
                .unwrap_or_else(|| panic!("{name}: tshark has no {want} for Reef's {e:?}"));
            tshark.remove(at);
            paired += 1;
        }
    }
    // 4 startups, 1 SSLRequest, 1 CancelRequest, 26 executions.
    assert_eq!(paired, 32);
}
