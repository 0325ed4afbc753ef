//! GraphQL operations from requests: operation kinds and names, selection by
//! operationName, batches, GET parameters, what stays HTTP, and the hook in HTTP/1.

use reef_reassembly::Dir;
use reef_schema::{Body, Entry, Headers, Protocol};

use super::{MAX_QUERY_BYTES, Operation, enrich, operation};
use crate::framing::sim::Sim;

const C: Dir = Dir::Forward;
const S: Dir = Dir::Reverse;

/// The shared test connection, its client on port 50000.
fn new_sim() -> Sim {
    let mut s = Sim::new(80);
    s.ctx.endpoints[0].port = 50000;
    s
}

fn op(kind: &'static str, name: Option<&str>) -> Option<Operation> {
    Some(Operation {
        kind,
        name: name.map(str::to_string),
    })
}

#[test]
fn operation_kinds_and_names() {
    assert_eq!(operation("{ me { id } }", None), op("query", None));
    assert_eq!(
        operation("query GetUser($id: ID!) { user(id: $id) { name } }", None),
        op("query", Some("GetUser"))
    );
    assert_eq!(
        operation("mutation AddTodo { add(text: \"x\") { id } }", None),
        op("mutation", Some("AddTodo"))
    );
    assert_eq!(
        operation("subscription { ticks }", None),
        op("subscription", None)
    );
    // A fragment beside the operation is part of the request.
    assert_eq!(
        operation("query Q { user { ...F } } fragment F on User { id }", None),
        op("query", Some("Q"))
    );
}

#[test]
fn operation_name_selects_among_several() {
    let doc = "query A { a } mutation B { b }";
    assert_eq!(operation(doc, Some("B")), op("mutation", Some("B")));
    assert_eq!(operation(doc, Some("A")), op("query", Some("A")));
    // Ambiguous without a name, or naming none of them: not read.
    assert_eq!(operation(doc, None), None);
    assert_eq!(operation(doc, Some("C")), None);
}

#[test]
fn what_is_not_an_executable_document() {
    assert_eq!(operation("shoes", None), None);
    assert_eq!(operation("{ unclosed", None), None);
    assert_eq!(operation("type User { id: ID }", None), None);
    assert_eq!(operation("", None), None);
    let deep = format!("{}{}", "{ a ".repeat(1000), "}".repeat(1000));
    assert_eq!(operation(&deep, None), None, "past the recursion limit");
    let long = format!("{{ a{} }}", " ".repeat(MAX_QUERY_BYTES));
    assert_eq!(operation(&long, None), None);
}

fn http(method: &str, path: &str, ct: Option<&str>, body: &[u8]) -> Entry {
    let mut h = Headers::new();
    if let Some(ct) = ct {
        h.push("Content-Type", ct);
    }
    Entry {
        protocol: Protocol::Http,
        method: Some(method.into()),
        path: Some(path.into()),
        status_code: Some(200),
        request_headers: Some(h),
        request_body: Some(Body(body.to_vec())),
        summary: Some(format!("{method} {path} → 200")),
        ..Entry::default()
    }
}

fn kind_and_name(e: &Entry) -> (Protocol, Option<&str>, Option<&str>) {
    (
        e.protocol,
        e.graphql_operation_type.as_deref(),
        e.graphql_operation.as_deref(),
    )
}

#[test]
fn post_json_bodies() {
    let mut e = http(
        "POST",
        "/graphql",
        Some("application/json; charset=utf-8"),
        br#"{"query":"query A { a } mutation B { b }","operationName":"B","variables":{}}"#,
    );
    enrich(&mut e);
    assert_eq!(
        kind_and_name(&e),
        (Protocol::Graphql, Some("mutation"), Some("B"))
    );
    assert_eq!(
        e.summary.as_deref(),
        Some("mutation B: POST /graphql → 200")
    );
    assert_eq!(e.method.as_deref(), Some("POST"));
    assert_eq!(e.status_code, Some(200));

    // A batch: the first operation counts. A null operationName is none.
    let mut e = http(
        "POST",
        "/gql",
        None,
        br#" [{"query":"{ me }","operationName":null},{"query":"mutation M { m }"}]"#,
    );
    enrich(&mut e);
    assert_eq!(kind_and_name(&e), (Protocol::Graphql, Some("query"), None));

    let mut e = http(
        "POST",
        "/graphql",
        Some("application/graphql"),
        b"subscription OnTick { tick }",
    );
    enrich(&mut e);
    assert_eq!(
        kind_and_name(&e),
        (Protocol::Graphql, Some("subscription"), Some("OnTick"))
    );
}

#[test]
fn get_parameters() {
    let mut e = http(
        "GET",
        "/graphql?operationName=Q&query=query+Q%28%24id%3A+ID%29+%7B+user%28id%3A+%24id%29+%7B+name+%7D+%7D&variables=%7B%7D",
        None,
        b"",
    );
    enrich(&mut e);
    assert_eq!(
        kind_and_name(&e),
        (Protocol::Graphql, Some("query"), Some("Q"))
    );
    assert_eq!(
        e.path.as_deref().map(|p| p.starts_with("/graphql?")),
        Some(true)
    );
}

#[test]
fn other_requests_stay_http() {
    for mut e in [
        http("GET", "/search?query=shoes", None, b""),
        http("GET", "/graphql", None, b""),
        http(
            "POST",
            "/api",
            Some("application/json"),
            br#"{"query":"shoes"}"#,
        ),
        http(
            "POST",
            "/api",
            Some("application/json"),
            br#"{"q":"{ a }"}"#,
        ),
        http("POST", "/api", Some("application/json"), b"{ a }"),
        http("PUT", "/graphql", Some("application/graphql"), b"{ a }"),
        http("GET", "/x?query=%ff%fe", None, b""),
    ] {
        let before = e.clone();
        enrich(&mut e);
        assert_eq!(e, before);
    }
    // gRPC entries are left alone whatever they carry.
    let mut g = http("POST", "/graphql", Some("application/graphql"), b"{ a }");
    g.protocol = Protocol::Grpc;
    enrich(&mut g);
    assert_eq!(g.graphql_operation_type, None);
}

#[test]
fn http1_requests_become_graphql_entries() {
    let body = br#"{"query":"mutation Like($id: ID!) { like(id: $id) { count } }","variables":{"id":"1"}}"#;
    let mut req = format!(
        "POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    let resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"data\":{\"like\":{\"count\":1}}}\n";
    let mut sim = new_sim();
    sim.send(C, &req).send(S, resp);
    sim.send(C, b"GET /health HTTP/1.1\r\nHost: api\r\n\r\n")
        .send(S, b"HTTP/1.1 204 No Content\r\n\r\n");
    let e = sim.close();
    assert_eq!(e.len(), 2);
    assert_eq!(
        kind_and_name(&e[0]),
        (Protocol::Graphql, Some("mutation"), Some("Like"))
    );
    assert_eq!(e[0].http_version.as_deref(), Some("1.1"));
    assert_eq!(e[0].status_code, Some(200));
    assert_eq!(e[0].path.as_deref(), Some("/graphql"));
    assert_eq!(
        e[0].summary.as_deref(),
        Some("mutation Like: POST /graphql → 200 OK")
    );
    assert_eq!(e[1].protocol, Protocol::Http);
}
