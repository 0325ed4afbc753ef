//! MySQL and MariaDB end to end: the corpus captures (facts per capture, and where
//! tshark 4.0 sees less than Reef), the recording in `cases/live-mariadb`, and the
//! mariadb client and mysql-connector-python against the MariaDB running on this
//! machine, captured live on `lo`.
//!
//! tshark differences shown here:
//! - The compressed protocol joined mid-connection
//!   (`mysql_deepflow_compressed-response`): tshark, told the port is MySQL, reads
//!   the compressed packet as a plain one and calls it COM_SLEEP; Reef recognises
//!   the compressed framing and reads the COM_QUERY inside and the five-row result.
//! - Executions of prepared statements (`mysql_deepflow_prepared-statement`): tshark
//!   has no query for COM_STMT_EXECUTE; Reef carries the text of the statement the
//!   COM_STMT_PREPARE named (by statement id) to its executions.
//!
//! `check_truth.py --proto mysql` finds all 30 of tshark's queries; its precision
//! (30/39) counts as extra these two executions and the seven entries without a
//! query text (logins, COM_INIT_DB, COM_FIELD_LIST, COM_STMT_CLOSE), which tshark
//! lists as well, as transactions without a query
//! (`entries_without_a_query_are_transactions_tshark_lists_too`).

use reef_integration::{case_dir, corpus_file, dissect_file};
use reef_schema::{Entry, Flags, Protocol};

fn my(entries: Vec<Entry>) -> Vec<Entry> {
    entries
        .into_iter()
        .filter(|e| e.protocol == Protocol::Mysql)
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
    my(dissect_file(&corpus_file(name)).0)
}

fn truth(name: &str) -> serde_json::Value {
    let p = reef_integration::corpus_dir().join(format!("{name}.truth.json"));
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn zeek_session_with_every_command() {
    let e = corpus("mysql_zeek_mysql");
    let methods: Vec<_> = e.iter().map(|x| x.method.as_deref().unwrap()).collect();
    assert_eq!(
        methods.len(),
        17,
        "the login and 16 commands (COM_QUIT is no entry)"
    );
    assert_eq!(
        &methods[..8],
        [
            "Login",
            "Query",
            "Query",
            "InitDB",
            "Query",
            "Query",
            "FieldList",
            "Query"
        ]
    );
    assert_eq!(
        e[0].summary.as_deref(),
        Some("Login user=tfoerste (server 5.0.54) → OK")
    );
    assert_eq!(e[6].summary.as_deref(), Some("FieldList agent → 4 fields"));
    let select = e
        .iter()
        .find(|x| x.path.as_deref() == Some("select * from foo"))
        .unwrap();
    assert_eq!(select.db_rows, Some(2));
    let delete = e
        .iter()
        .find(|x| x.path.as_deref() == Some("delete from foo where name like '%oo%'"))
        .unwrap();
    assert_eq!(delete.db_rows, Some(1), "affected rows");
    assert!(e.iter().all(|x| x.status_code == Some(0) && !x.incomplete));
}

#[test]
fn mysql_8_large_result() {
    let e = corpus("mysql_zeek_selects-new-proto");
    assert_eq!(
        e[0].summary.as_deref(),
        Some("Login user=root program=mysql auth=mysql_native_password (server 8.0.21) → OK")
    );
    let rows: Vec<_> = e[1..].iter().map(|x| x.db_rows.unwrap()).collect();
    assert_eq!(rows, [1, 4, 78, 33]);
    let e = corpus("mysql_deepflow_large-response");
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[1].summary.as_deref(),
        Some("Query SELECT * FROM `controller` → 3 rows, 21 columns")
    );
}

#[test]
fn tls_after_the_greeting() {
    let e = corpus("mysql_zeek_tls13-amazon-rds");
    assert_eq!(e.len(), 1);
    assert_eq!(key(&e[0]), ("SSLRequest", None, Some(0)));
    assert!(e[0].summary.as_deref().unwrap().contains("(server 8.0.28)"));
    // The handshake that follows is read as TLS's own entry.
    let tls: Vec<Entry> = dissect_file(&corpus_file("mysql_zeek_tls13-amazon-rds"))
        .0
        .into_iter()
        .filter(|e| e.protocol == Protocol::Tls)
        .collect();
    assert_eq!(tls.len(), 1);
    assert_eq!(tls[0].method.as_deref(), Some("ClientHello"));
    assert_eq!(tls[0].tls_version.as_deref(), Some("TLS 1.3"));
    assert_eq!(tls[0].tls_cipher.as_deref(), Some("TLS_AES_256_GCM_SHA384"));
    assert!(tls[0].flags.is_empty());
}

/// tshark differs: it reads the compressed packet as plain (COM_SLEEP, no query);
/// Reef reads the query inside and inflates the reply.
#[test]
fn tshark_differs_compressed_protocol_joined_midway() {
    let t = truth("mysql_deepflow_compressed-response");
    let tx = &t["l7"]["mysql"]["transactions"][0];
    assert_eq!(tx["command"], "SLEEP");
    assert!(tx["query"].is_null());
    let e = corpus("mysql_deepflow_compressed-response");
    assert_eq!(e.len(), 1);
    assert_eq!(
        key(&e[0]),
        (
            "Query",
            Some("SELECT * FROM `az_controller_connection`"),
            Some(0)
        )
    );
    assert_eq!(e[0].db_rows, Some(5));
    assert_eq!(
        e[0].response_size,
        Some(374),
        "the compressed packet's wire bytes"
    );
}

/// tshark differs: COM_STMT_EXECUTE has no query in its view; Reef carries the text
/// prepared under the statement id to each execution. Streams joined mid-way after
/// lost bytes still pair.
#[test]
fn tshark_differs_executions_carry_the_prepared_text() {
    let t = truth("mysql_deepflow_prepared-statement");
    let executes = t["l7"]["mysql"]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["command"] == "STMT_EXECUTE")
        .inspect(|x| assert!(x["query"].is_null()))
        .count();
    assert_eq!(executes, 2);
    let e = corpus("mysql_deepflow_prepared-statement");
    let exec: Vec<_> = e
        .iter()
        .filter(|x| x.method.as_deref() == Some("StmtExecute"))
        .map(|x| (x.path.as_deref().unwrap(), x.db_rows.unwrap()))
        .collect();
    assert_eq!(
        exec,
        [
            ("SELECT * FROM `controller` WHERE name = ?", 1),
            (
                "SELECT * FROM `domain` WHERE enabled = ? AND controller_ip = ?",
                4
            ),
        ]
    );
    assert_eq!(e.len(), 13);
    let no_response = e
        .iter()
        .filter(|x| x.flags.contains(Flags::NO_RESPONSE))
        .count();
    assert_eq!(no_response, 3, "the capture ends before three replies");
    let closes = e
        .iter()
        .filter(|x| x.method.as_deref() == Some("StmtClose"))
        .count();
    assert_eq!(closes, 2);
}

fn recorded() -> Vec<Entry> {
    my(dissect_file(&case_dir("live-mariadb").join("capture.pcap")).0)
}

/// `cases/live-mariadb`: the mariadb client (plain, then compressed), and
/// mysql-connector-python's server-side prepared statements.
#[test]
fn recorded_mariadb_sessions() {
    let e = recorded();
    let cli: Vec<_> = e.iter().filter(|x| x.src_port == e[0].src_port).collect();
    assert!(
        cli[0]
            .summary
            .as_deref()
            .unwrap()
            .contains("10.11.19-MariaDB")
    );
    let statuses: Vec<_> = cli.iter().map(|x| x.status_code.unwrap()).collect();
    assert_eq!(statuses, [0, 0, 0, 0, 1062, 1054, 0, 0, 0, 0, 0]);
    assert_eq!(cli[2].db_rows, Some(3), "3 rows affected");
    assert_eq!(cli[3].db_rows, Some(3), "3 rows returned");
    assert_eq!(cli[6].db_rows, Some(2), "2 rows updated");
    assert_eq!(cli[9].path.as_deref(), Some("EXECUTE s USING @i"));
    assert_eq!(cli[9].db_rows, Some(1));
    // --compress: the same reading through zlib.
    let compressed = e
        .iter()
        .find(|x| {
            x.path
                .as_deref()
                .is_some_and(|p| p.starts_with("SELECT table_name"))
        })
        .unwrap();
    assert_eq!(compressed.db_rows, Some(5));
    assert!(
        e.iter()
            .any(|x| x.path.as_deref() == Some("SELECT 'reef-compressed'"))
    );
    assert!(e.iter().all(|x| !x.incomplete));
}

#[test]
fn recorded_binary_protocol() {
    let e = recorded();
    let ps: Vec<_> = e
        .iter()
        .filter(|x| x.method.as_deref().is_some_and(|m| m.starts_with("Stmt")))
        .collect();
    let exec: Vec<_> = ps
        .iter()
        .filter(|x| x.method.as_deref() == Some("StmtExecute"))
        .map(|x| {
            (
                x.path.as_deref().unwrap().split(" reef").next().unwrap(),
                x.status_code.unwrap(),
                x.db_rows,
            )
        })
        .collect();
    assert_eq!(
        exec,
        [
            ("CREATE TABLE", 0, Some(0)),
            ("INSERT INTO", 0, Some(1)),
            ("INSERT INTO", 0, Some(1)),
            ("SELECT id, name FROM", 0, Some(2)),
            ("INSERT INTO", 1062, None),
        ]
    );
    let closes = ps
        .iter()
        .filter(|x| x.method.as_deref() == Some("StmtClose"))
        .count();
    assert_eq!(closes, 5);
}

/// Live: the mariadb client and mysql-connector-python against the MariaDB at
/// 127.0.0.1:3306, captured on `lo` while they run. Tables are unique to the run and
/// dropped at the end.
mod running_server {
    use std::io::Write;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use reef_integration::live::LiveCapture;
    use reef_schema::{Entry, Protocol};

    use crate::live_tools::{SETTLE, python_with, run, server, tool, wait};

    const PORT: u16 = 3306;

    fn mariadb(extra: &[&str]) -> Command {
        let mut c = Command::new(tool("mariadb", "mariadb-client"));
        c.args([
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            "root",
            "--connect-timeout=5",
        ])
        .args(extra)
        .arg("test");
        c
    }

    #[test]
    fn live_mariadb_client_and_prepared_statements() {
        server("127.0.0.1:3306", "MariaDB");
        let py = python_with(
            "mysql.connector",
            "scripts/test installs it in its venv (REEF_PYTHON); or pip install mysql-connector-python",
        );
        let table = format!("reef_mysql_{}", std::process::id());
        let limit = Duration::from_secs(20);
        let script = reef_integration::case_dir("live-mariadb").join("prepared.py");

        let cap = LiveCapture::start("lo");
        let sql = format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY);\n\
             INSERT INTO {table} VALUES (1), (2), (3);\n\
             SELECT id FROM {table} ORDER BY id;\n\
             INSERT INTO {table} VALUES (1);\n\
             DROP TABLE {table};\n"
        );
        let mut child = mariadb(&["--force"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let out = wait(child, limit, "mariadb");
        assert!(String::from_utf8_lossy(&out.stderr).contains("ERROR 1062"));
        run(
            mariadb(&[
                "--compress",
                "-e",
                &format!("SELECT 'reef-compressed-{table}'"),
            ])
            .stdin(Stdio::null()),
            limit,
        );
        let ps_table = format!("{table}_ps");
        let out = run(Command::new(&py).arg(&script).arg(&ps_table), limit);
        assert!(String::from_utf8_lossy(&out.stdout).contains("error 1062"));
        let (entries, _) = cap.stop(SETTLE);
        let e: Vec<Entry> = entries
            .into_iter()
            .filter(|x| x.protocol == Protocol::Mysql && x.dst_port == Some(PORT))
            .collect();
        let ours = |p: String| {
            let e = &e;
            e.iter()
                .filter(move |x| x.path.as_deref() == Some(p.as_str()))
        };

        let created = ours(format!("CREATE TABLE {table} (id INT PRIMARY KEY)"))
            .next()
            .unwrap();
        assert_eq!(
            (created.method.as_deref(), created.status_code),
            (Some("Query"), Some(0))
        );
        let inserted = ours(format!("INSERT INTO {table} VALUES (1), (2), (3)"))
            .next()
            .unwrap();
        assert_eq!(inserted.db_rows, Some(3));
        let dup = ours(format!("INSERT INTO {table} VALUES (1)"))
            .next()
            .unwrap();
        assert_eq!(dup.status_code, Some(1062));
        assert!(
            dup.db_error
                .as_deref()
                .unwrap()
                .starts_with("1062 (23000): Duplicate entry")
        );
        let select = ours(format!("SELECT id FROM {table} ORDER BY id"))
            .next()
            .unwrap();
        assert_eq!(select.db_rows, Some(3));
        let compressed = ours(format!("SELECT 'reef-compressed-{table}'"))
            .next()
            .unwrap();
        assert_eq!(compressed.db_rows, Some(1));
        // The binary protocol: each execution carries its prepared text.
        let select_ps = format!("SELECT id, name FROM {ps_table} WHERE id >= ? ORDER BY id");
        let methods: Vec<_> = ours(select_ps)
            .map(|x| (x.method.as_deref().unwrap(), x.db_rows))
            .collect();
        assert_eq!(methods, [("StmtPrepare", None), ("StmtExecute", Some(2))]);
        let insert_ps = format!("INSERT INTO {ps_table} VALUES (?, ?)");
        let statuses: Vec<_> = ours(insert_ps)
            .filter(|x| x.method.as_deref() == Some("StmtExecute"))
            .map(|x| x.status_code.unwrap())
            .collect();
        assert_eq!(statuses, [0, 0, 1062]);
        assert!(
            e.iter()
                .filter(|x| x.path.as_deref().is_some_and(|p| p.contains(&table)))
                .all(|x| !x.incomplete)
        );
    }
}

/// The corpus check compares query texts only, so Reef's entries for commands without
/// one (the login, COM_INIT_DB, COM_FIELD_LIST, COM_STMT_CLOSE, a switch to TLS) count
/// as extras there. tshark lists each of them too, as a transaction without a query:
/// this pairs every such Reef entry with one of those, by command, in every MySQL
/// capture of the corpus.
#[test]
fn entries_without_a_query_are_transactions_tshark_lists_too() {
    let command = |method: &str| match method {
        // tshark calls the client's SSL request packet its login, which it is the
        // start of.
        "Login" | "SSLRequest" => "LOGIN",
        "InitDB" => "INIT_DB",
        "FieldList" => "FIELD_LIST",
        "StmtClose" => "STMT_CLOSE",
        other => panic!("a MySQL entry without a query, of an unexpected kind: {other}"),
    };
    let mut paired = 0;
    for name in [
        "mysql_arkime_allow",
        "mysql_deepflow_compressed-response",
        "mysql_deepflow_large-response",
        "mysql_deepflow_prepared-statement",
        "mysql_zeek_mysql",
        "mysql_zeek_selects-new-proto",
        "mysql_zeek_tls13-amazon-rds",
    ] {
        let t = truth(name);
        let mut tshark: Vec<String> = t["l7"]["mysql"]["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["query"].is_null())
            .map(|x| x["command"].as_str().unwrap_or("").to_string())
            .collect();
        for e in corpus(name) {
            if e.path.as_deref().is_some_and(|q| !q.trim().is_empty()) {
                continue;
            }
            let want = command(e.method.as_deref().unwrap_or(""));
            let at = tshark
                .iter()
                .position(|c| c == want)
                .unwrap_or_else(|| panic!("{name}: tshark has no {want} for Reef's {e:?}"));
            tshark.remove(at);
            paired += 1;
        }
    }
    // 4 logins (one of them the TLS switch), INIT_DB, FIELD_LIST, 2 STMT_CLOSE.
    assert_eq!(paired, 8);
}
