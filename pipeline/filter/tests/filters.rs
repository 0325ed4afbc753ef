//! Filters against entries built with reef_schema: bad filters must give specific
//! errors; good filters must select exactly the rows an independent Rust predicate does.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use reef_filter::{Filter, FilterError, MAX_DEPTH, MAX_FILTER_BYTES};
use reef_schema::{Entry, Flags, Headers, Protocol, entry_schema};

fn schema() -> SchemaRef {
    entry_schema()
}

/// A few hundred entries with varied, partly absent, values (a fixed LCG: reproducible).
fn entries() -> Vec<Entry> {
    let mut seed: u64 = 0x5eed;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let methods = ["GET", "POST", "PUT", "DELETE", "get"];
    let paths = [
        "/api/users",
        "/api/orders/7",
        "/healthz",
        "/",
        "/static/app.js",
        "/API/x",
    ];
    let namespaces = ["prod", "staging", "kube-system"];
    let protocols = [
        Protocol::Http,
        Protocol::Grpc,
        Protocol::Dns,
        Protocol::Redis,
    ];
    let statuses = [200, 201, 204, 301, 404, 500, 502, 503];
    (0..400u64)
        .map(|i| {
            let protocol = protocols[next(4) as usize];
            let mut flags = Flags::empty();
            if next(5) == 0 {
                flags.insert(Flags::RESPONSE_GAP);
            }
            if next(7) == 0 {
                flags.insert(Flags::MALFORMED);
            }
            let labels: Option<BTreeMap<String, String>> = match next(4) {
                0 => None,
                1 => Some([("app".to_string(), "web".to_string())].into()),
                2 => Some(
                    [
                        ("app".to_string(), "db".to_string()),
                        ("tier".into(), "x".into()),
                    ]
                    .into(),
                ),
                _ => Some(BTreeMap::new()),
            };
            // Header names keep their case; a name may repeat.
            let request_headers = match next(4) {
                0 => None,
                1 => Some(headers(&[("Content-Type", "application/json")])),
                2 => Some(headers(&[
                    ("content-type", "application/json"),
                    ("Accept", "a"),
                    ("Accept", "b"),
                ])),
                _ => Some(headers(&[("Content-Type", "text/plain")])),
            };
            Entry {
                id: format!("e-{i}"),
                request_headers,
                timestamp: 1_700_000_000_000_000_000 + (next(2000) as i64 - 1000) * 1_000_000_000,
                elapsed_time: (next(6) != 0).then(|| next(5000) as i64),
                protocol,
                src_ip: "10.0.0.1".parse().expect("ip"),
                src_port: (next(10) != 0).then(|| next(65536) as u16),
                dst_ip: "10.0.0.2".parse().expect("ip"),
                dst_port: Some([80, 443, 53, 6379][next(4) as usize]),
                method: (next(8) != 0).then(|| methods[next(5) as usize].to_string()),
                path: (next(8) != 0).then(|| paths[next(6) as usize].to_string()),
                status_code: (next(6) != 0).then(|| statuses[next(8) as usize]),
                grpc_status: (protocol == Protocol::Grpc && next(4) != 0).then(|| next(3) as i32),
                request_size: (next(5) != 0).then(|| next(6000)),
                response_size: (next(5) != 0).then(|| next(6000)),
                incomplete: next(6) == 0,
                flags,
                dst_namespace: (next(5) != 0).then(|| namespaces[next(3) as usize].to_string()),
                dst_labels: labels,
                ..Entry::default()
            }
        })
        .collect()
}

fn matched_ids(filter: &Filter, batch: &RecordBatch) -> Vec<String> {
    let out = filter.filter_batch(batch).expect("filter_batch");
    reef_schema::entries_from_batch(&out)
        .expect("entries")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

type Pred = fn(&Entry) -> bool;

fn s(v: &Option<String>) -> Option<&str> {
    v.as_deref()
}

#[test]
fn good_filters_agree_with_rust_predicates() {
    let long_or = (0..40)
        .map(|i| format!("status_code = {}", 150 + i * 10))
        .collect::<Vec<_>>()
        .join(" OR ");
    let long_or_pred: Pred = |e| {
        e.status_code
            .is_some_and(|c| (150..550).contains(&c) && c % 10 == 0)
    };
    let cases: Vec<(String, Pred)> = vec![
        ("".into(), |_| true),
        (
            "status_code >= 500 AND dst_namespace = 'prod'".into(),
            |e| e.status_code.is_some_and(|c| c >= 500) && s(&e.dst_namespace) == Some("prod"),
        ),
        ("method IN ('GET','POST')".into(), |e| {
            matches!(s(&e.method), Some("GET" | "POST"))
        }),
        ("method NOT IN ('GET','POST')".into(), |e| {
            e.method.is_some() && !matches!(s(&e.method), Some("GET" | "POST"))
        }),
        ("path LIKE '/api/%'".into(), |e| {
            s(&e.path).is_some_and(|p| p.starts_with("/api/"))
        }),
        ("path ILIKE '/api/%'".into(), |e| {
            s(&e.path).is_some_and(|p| p.to_lowercase().starts_with("/api/"))
        }),
        ("elapsed_time > 1000".into(), |e| {
            e.elapsed_time.is_some_and(|t| t > 1000)
        }),
        ("protocol = 'grpc' AND grpc_status <> 0".into(), |e| {
            e.protocol == Protocol::Grpc && e.grpc_status.is_some_and(|g| g != 0)
        }),
        ("dst_labels['app'] = 'web'".into(), |e| {
            e.dst_labels
                .as_ref()
                .and_then(|l| l.get("app"))
                .map(String::as_str)
                == Some("web")
        }),
        // What the dashboard adds when a header value is clicked: the exact name.
        (
            "request_headers['Content-Type'] = 'application/json'".into(),
            |e| {
                e.request_headers
                    .as_ref()
                    .and_then(|h| h.iter().find(|(k, _)| *k == "Content-Type"))
                    .is_some_and(|(_, v)| v == "application/json")
            },
        ),
        ("request_headers['Accept'] = 'a'".into(), |e| {
            e.request_headers
                .as_ref()
                .is_some_and(|h| h.get_all("Accept").next() == Some("a"))
        }),
        ("array_has(flags, 'response_gap')".into(), |e| {
            e.flags.contains(Flags::RESPONSE_GAP)
        }),
        ("NOT incomplete OR status_code IS NULL".into(), |e| {
            !e.incomplete || e.status_code.is_none()
        }),
        ("src_port BETWEEN 1000 AND 40000".into(), |e| {
            e.src_port.is_some_and(|p| (1000..=40000).contains(&p))
        }),
        (
            "lower(method) = 'get' AND NOT (path LIKE '%health%')".into(),
            |e| {
                s(&e.method).is_some_and(|m| m.eq_ignore_ascii_case("get"))
                    && s(&e.path).is_some_and(|p| !p.contains("health"))
            },
        ),
        (long_or, long_or_pred),
        ("timestamp >= '2023-11-14T22:13:20Z'".into(), |e| {
            e.timestamp >= 1_700_000_000_000_000_000
        }),
        (
            "starts_with(path, '/api') AND elapsed_time IS NOT NULL".into(),
            |e| s(&e.path).is_some_and(|p| p.starts_with("/api")) && e.elapsed_time.is_some(),
        ),
        ("coalesce(status_code, 0) = 0".into(), |e| {
            e.status_code.unwrap_or(0) == 0
        }),
        ("status_code <> 200".into(), |e| {
            e.status_code.is_some_and(|c| c != 200)
        }),
        (
            "request_size + response_size > 5000".into(),
            |e| matches!((e.request_size, e.response_size), (Some(a), Some(b)) if a + b > 5000),
        ),
        (
            "dst_port = 443 AND (method = 'GET' OR path = '/')".into(),
            |e| e.dst_port == Some(443) && (s(&e.method) == Some("GET") || s(&e.path) == Some("/")),
        ),
        ("path ~ '^/api/[a-z]+$'".into(), |e| {
            s(&e.path).is_some_and(|p| {
                p.strip_prefix("/api/")
                    .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase()))
            })
        }),
        (
            "CASE WHEN protocol = 'dns' THEN dst_port = 53 ELSE incomplete END".into(),
            |e| {
                if e.protocol == Protocol::Dns {
                    e.dst_port == Some(53)
                } else {
                    e.incomplete
                }
            },
        ),
        ("cardinality(flags) >= 2".into(), |e| {
            e.flags.names().count() >= 2
        }),
        ("CAST(status_code AS VARCHAR) LIKE '5%'".into(), |e| {
            e.status_code.is_some_and(|c| (500..600).contains(&c))
        }),
        (
            "TRY_CAST(elapsed_time AS DOUBLE) / 1000.0 > 2.5".into(),
            |e| e.elapsed_time.is_some_and(|t| t as f64 / 1000.0 > 2.5),
        ),
    ];
    let entries = entries();
    let batch = Entry::batch(&entries);
    for (text, pred) in &cases {
        let filter = Filter::compile(text, &schema()).unwrap_or_else(|e| panic!("{text}: {e}"));
        let want: Vec<String> = entries
            .iter()
            .filter(|e| pred(e))
            .map(|e| e.id.clone())
            .collect();
        let got = matched_ids(&filter, &batch);
        assert_eq!(got, want, "filter {text:?}");
        assert!(
            !want.is_empty() && (want.len() < entries.len() || text.is_empty()),
            "filter {text:?} selects {} of {}: not a discriminating test",
            want.len(),
            entries.len()
        );
        // evaluate() gives the same rows, without nulls.
        let mask = filter.evaluate(&batch).expect("evaluate");
        assert_eq!(mask.null_count(), 0);
        assert_eq!(mask.true_count(), want.len());
    }
}

#[test]
fn a_filter_is_reused_across_batches() {
    let entries = entries();
    let filter = Filter::compile("status_code >= 500", &schema()).expect("compile");
    let mut total = 0;
    for chunk in entries.chunks(37) {
        total += filter
            .filter_batch(&Entry::batch(chunk))
            .expect("filter")
            .num_rows();
    }
    let want = entries
        .iter()
        .filter(|e| e.status_code.is_some_and(|c| c >= 500))
        .count();
    assert_eq!(total, want);
}

#[test]
fn empty_filter_matches_all() {
    for text in ["", "   ", "\n"] {
        let f = Filter::compile(text, &schema()).expect("compile");
        assert!(f.matches_all());
        let batch = Entry::batch(&entries()[..10]);
        assert_eq!(f.filter_batch(&batch).expect("filter").num_rows(), 10);
        assert_eq!(f.evaluate(&batch).expect("eval").true_count(), 10);
    }
}

#[test]
fn constant_filters_read_no_columns() {
    let batch = Entry::batch(&entries()[..10]);
    for (text, n) in [("1 = 1", 10), ("1 = 2", 0), ("NULL IS NULL", 10)] {
        let f = Filter::compile(text, &schema()).expect("compile");
        assert_eq!(
            f.filter_batch(&batch).expect("filter").num_rows(),
            n,
            "{text}"
        );
    }
}

#[test]
fn a_batch_of_another_schema_is_refused() {
    let f = Filter::compile("status_code = 200", &schema()).expect("compile");
    let batch = Entry::batch(&entries()[..3]);
    let other = batch.project(&[0, 1, 2]).expect("project");
    let err = f.evaluate(&other).unwrap_err();
    assert!(err.message.contains("schema"), "{err}");
}

#[test]
fn filters_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Filter>();
    let f = Arc::new(Filter::compile("status_code = 200", &schema()).expect("compile"));
    let batch = Entry::batch(&entries());
    let want = f.evaluate(&batch).expect("eval").true_count();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| assert_eq!(f.evaluate(&batch).expect("eval").true_count(), want));
        }
    });
}

/// A bad filter, substrings its error message must hold, and its position if known.
type BadCase<'a> = (&'a str, Vec<&'a str>, Option<(usize, usize)>);

fn err(text: &str) -> FilterError {
    match Filter::compile(text, &schema()) {
        Ok(_) => panic!("{text:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn bad_filters_give_specific_errors() {
    let deep_parens = format!(
        "{}true{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    let deep_nots = format!("{}incomplete", "NOT ".repeat(200));
    let too_long = format!("path = '{}'", "a".repeat(MAX_FILTER_BYTES));
    // (filter, expected substrings of the message, expected position)
    let cases: Vec<BadCase> = vec![
        (
            "stauts_code = 200",
            vec!["unknown column 'stauts_code' at 1:1 — did you mean 'status_code'?"],
            Some((1, 1)),
        ),
        (
            "status_code >= 500 AND dst_namspace = 'prod'",
            vec![
                "unknown column 'dst_namspace' at 1:24",
                "did you mean 'dst_namespace'",
            ],
            Some((1, 24)),
        ),
        (
            "dst.namespace = 'prod'",
            vec!["columns are not qualified", "did you mean 'dst_namespace'"],
            Some((1, 1)),
        ),
        (
            "\"prod\" = dst_namespace",
            vec!["unknown column 'prod'", "'single quotes'"],
            Some((1, 1)),
        ),
        (
            "status_code = 'abc'",
            vec![
                "type mismatch at 1:15",
                "column 'status_code' (Int32",
                "'abc'",
                "without quotes",
            ],
            Some((1, 15)),
        ),
        (
            "path > 5",
            vec![
                "type mismatch at 1:8",
                "column 'path' (Utf8",
                "quote the value",
            ],
            Some((1, 8)),
        ),
        (
            "flags = 'malformed'",
            vec!["type mismatch", "array_has"],
            Some((1, 9)),
        ),
        (
            "dst_labels = 'web'",
            vec!["type mismatch", "dst_labels['app']"],
            Some((1, 14)),
        ),
        (
            "timestamp > 5",
            vec!["type mismatch", "'2025-01-01T00:00:00Z'"],
            Some((1, 13)),
        ),
        (
            "path LIKE 5",
            vec!["type mismatch", "LIKE needs a string"],
            Some((1, 11)),
        ),
        (
            "incomplete AND status_code",
            vec!["AND needs a boolean", "column 'status_code'"],
            Some((1, 16)),
        ),
        (
            "status_code + 1",
            vec!["must be a boolean expression at 1:1"],
            Some((1, 1)),
        ),
        ("'abc'", vec!["must be a boolean expression"], Some((1, 1))),
        (
            "status_code >= ",
            vec!["syntax error at 1:", "expected an expression"],
            None,
        ),
        (
            "status_code = 200 status_code",
            vec!["unexpected 'status_code' at 1:19"],
            Some((1, 19)),
        ),
        (
            "status_code = 1; DROP TABLE entries",
            vec!["';' at 1:16", "statement"],
            Some((1, 16)),
        ),
        ("1=1; DROP TABLE x", vec!["';' at 1:4"], Some((1, 4))),
        (
            "' OR 1=1 --",
            vec!["syntax error at 1:1", "nterminated string"],
            Some((1, 1)),
        ),
        (
            "status_code = 200 -- and more",
            vec!["comments are not allowed in a filter at 1:19"],
            Some((1, 19)),
        ),
        (
            "status_code = 200 /* x */",
            vec!["comments are not allowed"],
            Some((1, 19)),
        ),
        (
            "status_code = 1 UNION SELECT * FROM secrets",
            vec!["unexpected 'UNION' at 1:17"],
            None,
        ),
        (
            "EXISTS (SELECT 1)",
            vec!["subqueries are not allowed in a filter at 1:"],
            None,
        ),
        (
            "method IN (SELECT method FROM entries)",
            vec!["subqueries are not allowed"],
            None,
        ),
        ("(SELECT 1) = 1", vec!["subqueries are not allowed"], None),
        (
            "count(*) > 1",
            vec!["function 'count' at 1:1 is not allowed", "aggregates"],
            Some((1, 1)),
        ),
        (
            "max(status_code) = 500",
            vec!["function 'max'", "aggregates"],
            Some((1, 1)),
        ),
        (
            "row_number() OVER () = 1",
            vec!["function 'row_number'", "window"],
            Some((1, 1)),
        ),
        (
            "random() < 0.5",
            vec!["function 'random' at 1:1 is not allowed"],
            Some((1, 1)),
        ),
        (
            "timestamp > now()",
            vec!["function 'now'", "is not allowed"],
            Some((1, 13)),
        ),
        (
            "sleep(10) = 0",
            vec!["unknown function 'sleep' at 1:1", "filters may call"],
            Some((1, 1)),
        ),
        (
            "upper(path, 1) = 'X'",
            vec!["upper() at 1:1 takes 1 arguments, not 2"],
            Some((1, 1)),
        ),
        (
            "status_code = $1",
            vec!["placeholder '$1' at 1:15"],
            Some((1, 15)),
        ),
        (&too_long, vec!["the limit is 4096"], None),
        (&deep_parens, vec!["nested too deeply", "64"], None),
        (&deep_nots, vec!["nested too deeply"], None),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (text, needles, pos) in cases {
        let e = err(text);
        for n in &needles {
            if !e.message.contains(n) {
                failures.push(format!("{text:?}: {:?} lacks {n:?}", e.message));
            }
        }
        if pos.is_some() && e.position != pos {
            failures.push(format!("{text:?}: position {:?}, want {pos:?}", e.position));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn longest_flat_chain_within_the_byte_limit_compiles() {
    // About 4 KB of `status_code = N OR …`: flat, so within MAX_DEPTH, and DataFusion's
    // recursion over ~200 nested binary nodes must not overflow the stack.
    let mut text = String::from("status_code = 0");
    let mut i = 1;
    while text.len() + 24 < MAX_FILTER_BYTES {
        text.push_str(&format!(" OR status_code = {i}"));
        i += 1;
    }
    let f = Filter::compile(&text, &schema()).expect("compile");
    let entries = entries();
    let got = f
        .evaluate(&Entry::batch(&entries))
        .expect("eval")
        .true_count();
    let want = entries
        .iter()
        .filter(|e| e.status_code.is_some_and(|c| c < i))
        .count();
    assert_eq!(got, want);
}

#[test]
fn nesting_up_to_the_limit_is_accepted() {
    let parens = format!(
        "{}status_code = 200{}",
        "(".repeat(MAX_DEPTH - 1),
        ")".repeat(MAX_DEPTH - 1)
    );
    Filter::compile(&parens, &schema()).unwrap_or_else(|e| panic!("parens: {e}"));
    let nots = format!("{}incomplete", "NOT ".repeat(MAX_DEPTH - 2));
    Filter::compile(&nots, &schema()).unwrap_or_else(|e| panic!("nots: {e}"));
}

/// Informal: compile time of a typical subscription filter in this (debug) test binary.
#[test]
fn compile_time_is_reported() {
    let text = "protocol = 'http' AND status_code >= 500 AND path LIKE '/api/%'";
    let _ = Filter::compile(text, &schema()).expect("warm up");
    let n = 50;
    let start = std::time::Instant::now();
    for _ in 0..n {
        let _ = Filter::compile(text, &schema()).expect("compile");
    }
    eprintln!(
        "compile: {:?} per filter (debug build)",
        start.elapsed() / n
    );
}

#[test]
fn strings_compared_with_enum_columns_must_be_known_values() {
    let domains = reef_schema::column_domains();
    let compile = |t: &str| Filter::compile_with(t, &schema(), &domains);
    let e = compile("protocol = 'htpp'").unwrap_err();
    assert_eq!(
        e.message,
        "unknown protocol 'htpp' at 1:12 — did you mean 'http'?"
    );
    assert_eq!(e.position, Some((1, 12)));
    let e = compile("status_code >= 500 AND 'gprc' <> protocol").unwrap_err();
    assert!(e.message.contains("did you mean 'grpc'"), "{}", e.message);
    let e = compile("protocol IN ('http', 'soap')").unwrap_err();
    assert!(
        e.message
            .starts_with("unknown protocol 'soap' at 1:22 (one of: "),
        "{}",
        e.message
    );
    let e = compile("transport = 'sctp'").unwrap_err();
    assert!(
        e.message.contains("unknown transport 'sctp'"),
        "{}",
        e.message
    );
    for ok in [
        "protocol = 'http'",
        "protocol IN ('grpc', 'dns')",
        "protocol <> 'redis'",
        "protocol LIKE 'ht%'",
        "method = 'htpp'",
    ] {
        assert!(compile(ok).is_ok(), "{ok}");
    }
    // Without domains, such a filter compiles (and matches nothing).
    assert!(Filter::compile("protocol = 'htpp'", &schema()).is_ok());
}

fn headers(pairs: &[(&str, &str)]) -> Headers {
    let mut h = Headers::new();
    for (k, v) in pairs {
        h.push(*k, *v);
    }
    h
}
