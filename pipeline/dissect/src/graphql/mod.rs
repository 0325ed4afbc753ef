//! GraphQL over HTTP: an HTTP/1 or HTTP/2 entry whose request carries a GraphQL
//! operation becomes a `graphql` entry, its HTTP columns unchanged.
//!
//! The operation comes from a POST body (`application/json`: `{"query": …,
//! "operationName": …}`, or a batch of those, of which the first counts;
//! `application/graphql`: the document itself) or from a GET's `query` and
//! `operationName` parameters. It must parse as an executable GraphQL document
//! (apollo-parser, with limits, since requests are untrusted input): a search API's
//! `?query=shoes` stays HTTP.

use apollo_parser::{Parser, cst};
use reef_schema::{Entry, Protocol};

/// Longest query text parsed; a longer one is not read (its entry stays HTTP).
pub const MAX_QUERY_BYTES: usize = 256 * 1024;
/// Nesting depth the parser accepts (selection sets, lists, objects).
pub const MAX_RECURSION: usize = 128;
/// Tokens the parser reads before giving up.
pub const MAX_TOKENS: usize = 100_000;

/// The operation a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// query, mutation or subscription.
    pub kind: &'static str,
    /// Its name; none for an anonymous operation.
    pub name: Option<String>,
}

/// Turns an HTTP entry whose request is a GraphQL operation into a `graphql` entry.
pub fn enrich(e: &mut Entry) {
    if e.protocol != Protocol::Http {
        return;
    }
    let Some(op) = request_operation(e) else {
        return;
    };
    e.protocol = Protocol::Graphql;
    let label = match &op.name {
        Some(n) => format!("{} {n}", op.kind),
        None => op.kind.to_string(),
    };
    e.summary = Some(match e.summary.take() {
        Some(s) => format!("{label}: {s}"),
        None => label,
    });
    e.graphql_operation_type = Some(op.kind.into());
    e.graphql_operation = op.name;
}

fn request_operation(e: &Entry) -> Option<Operation> {
    let method = e.method.as_deref()?;
    let (query, name) = if method.eq_ignore_ascii_case("GET") {
        let (_, q) = e.path.as_deref()?.split_once('?')?;
        let (mut query, mut name) = (None, None);
        for pair in q.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "query" => query = Some(percent_decode(v)?),
                "operationName" => name = Some(percent_decode(v)?),
                _ => {}
            }
        }
        (query?, name)
    } else if method.eq_ignore_ascii_case("POST") {
        let body = &e.request_body.as_ref()?.0;
        let ct = e
            .request_headers
            .as_ref()
            .and_then(|h| h.get("content-type"))
            .unwrap_or("");
        let essence = ct.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/graphql") {
            (String::from_utf8(body.clone()).ok()?, None)
        } else {
            from_json(body)?
        }
    } else {
        return None;
    };
    operation(&query, name.as_deref().filter(|n| !n.is_empty()))
}

/// `query` and `operationName` of a JSON request body (or of a batch's first).
fn from_json(body: &[u8]) -> Option<(String, Option<String>)> {
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    if !matches!(body[start], b'{' | b'[') {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let obj = match &v {
        serde_json::Value::Array(items) => items.first()?,
        other => other,
    };
    let query = obj.get("query")?.as_str()?.to_string();
    let name = obj
        .get("operationName")
        .and_then(|n| n.as_str())
        .map(str::to_string);
    Some((query, name))
}

/// The operation of a GraphQL document that `name` selects (or its only one).
pub fn operation(query: &str, name: Option<&str>) -> Option<Operation> {
    if query.len() > MAX_QUERY_BYTES {
        return None;
    }
    let tree = Parser::new(query)
        .recursion_limit(MAX_RECURSION)
        .token_limit(MAX_TOKENS)
        .parse();
    if tree.errors().len() > 0 {
        return None;
    }
    let mut ops = Vec::new();
    for def in tree.document().definitions() {
        match def {
            cst::Definition::OperationDefinition(op) => ops.push(op),
            cst::Definition::FragmentDefinition(_) => {}
            // Type definitions are schema, not a request.
            _ => return None,
        }
    }
    let op_name = |op: &cst::OperationDefinition| op.name().map(|n| n.text().to_string());
    let op = match name {
        Some(n) => ops.iter().find(|op| op_name(op).as_deref() == Some(n))?,
        None if ops.len() == 1 => &ops[0],
        None => return None,
    };
    let kind = match op.operation_type() {
        None => "query",
        Some(t) if t.mutation_token().is_some() => "mutation",
        Some(t) if t.subscription_token().is_some() => "subscription",
        Some(_) => "query",
    };
    Some(Operation {
        kind,
        name: op_name(op),
    })
}

/// Decodes a query-string value (`+` is a space); none when not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match b.get(i + 1..i + 3) {
                Some(&[h, l]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                    let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(digit(h) << 4 | digit(l));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
