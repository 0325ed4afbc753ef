//! GraphQL on fuzzer-chosen bytes: the operation reader on the raw input as a
//! document (with and without an operation name), and `enrich` on HTTP entries
//! carrying the input as a JSON body, a GraphQL body and a GET query parameter. Must
//! never panic (nor overflow the stack on deep nesting); an enriched entry keeps its
//! HTTP fields and has an operation type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reef_dissect::graphql;
use reef_schema::{Body, Entry, Headers, Protocol};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = graphql::operation(&text, None);
    if let Some((doc, name)) = text.split_once('\n') {
        let _ = graphql::operation(doc, Some(name));
    }
    let query: String = text.bytes().map(|b| format!("%{b:02x}")).collect();
    for (method, path, ct) in [
        ("POST", "/graphql".to_string(), "application/json"),
        ("POST", "/graphql".to_string(), "application/graphql"),
        ("GET", format!("/graphql?query={query}&operationName=A"), ""),
    ] {
        let mut h = Headers::new();
        h.push("content-type", ct);
        let mut e = Entry {
            protocol: Protocol::Http,
            method: Some(method.into()),
            path: Some(path),
            status_code: Some(200),
            request_headers: Some(h),
            request_body: Some(Body(data.to_vec())),
            ..Entry::default()
        };
        let before = e.clone();
        graphql::enrich(&mut e);
        if e.protocol == Protocol::Graphql {
            assert!(matches!(
                e.graphql_operation_type.as_deref(),
                Some("query" | "mutation" | "subscription")
            ));
            assert_eq!((&e.method, &e.path, e.status_code), (&before.method, &before.path, before.status_code));
        } else {
            assert_eq!(e, before);
        }
    }
});
