//! Redaction: secrets are replaced before an entry leaves the node that captured it.
//!
//! Header values (Authorization, Proxy-Authorization, Cookie, Set-Cookie and any
//! configured names) and the values of configured keys anywhere in JSON bodies become
//! `[REDACTED]`. Bodies that are not JSON are left as they are: guessing at secrets in
//! free text would corrupt more than it hides.

use reef_schema::{Body, Entry, Headers};

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Header fields redacted by default.
pub const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// JSON keys redacted by default, wherever they appear in a body.
pub const DEFAULT_JSON_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "authorization",
];

/// Largest body parsed as JSON for redaction; bodies are capped well below it anyway.
pub const MAX_JSON_BODY: usize = 1 << 20;
/// Nesting followed into JSON bodies; deeper values are left alone.
pub const MAX_JSON_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    /// Header names, lower case.
    headers: Vec<String>,
    /// JSON keys, lower case.
    json_keys: Vec<String>,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(
            DEFAULT_HEADERS.iter().map(|s| s.to_string()),
            DEFAULT_JSON_KEYS.iter().map(|s| s.to_string()),
        )
    }
}

impl Redactor {
    /// Redacts these header names and JSON keys (compared case-insensitively).
    pub fn new(
        headers: impl IntoIterator<Item = String>,
        json_keys: impl IntoIterator<Item = String>,
    ) -> Redactor {
        Redactor {
            headers: headers
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            json_keys: json_keys
                .into_iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
        }
    }

    /// The default lists plus these.
    pub fn with_defaults_and(headers: &[String], json_keys: &[String]) -> Redactor {
        let mut r = Redactor::default();
        r.headers
            .extend(headers.iter().map(|h| h.to_ascii_lowercase()));
        r.json_keys
            .extend(json_keys.iter().map(|k| k.to_ascii_lowercase()));
        r
    }

    /// Redacts an entry in place; returns how many values were replaced.
    pub fn redact(&self, e: &mut Entry) -> usize {
        let mut n = 0;
        for h in [&mut e.request_headers, &mut e.response_headers]
            .into_iter()
            .flatten()
        {
            n += self.redact_headers(h);
        }
        if !self.json_keys.is_empty() {
            for b in [&mut e.request_body, &mut e.response_body]
                .into_iter()
                .flatten()
            {
                n += self.redact_json_body(b);
            }
        }
        n
    }

    fn redact_headers(&self, h: &mut Headers) -> usize {
        let mut n = 0;
        for (name, value) in &mut h.0 {
            if self.headers.iter().any(|r| name.eq_ignore_ascii_case(r)) && value != REDACTED {
                *value = REDACTED.to_string();
                n += 1;
            }
        }
        n
    }

    fn redact_json_body(&self, b: &mut Body) -> usize {
        let first = b.0.iter().find(|c| !c.is_ascii_whitespace());
        if b.0.len() > MAX_JSON_BODY || !matches!(first, Some(b'{') | Some(b'[')) {
            return 0;
        }
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&b.0) else {
            return 0;
        };
        let n = self.redact_value(&mut v, 0);
        if n > 0
            && let Ok(bytes) = serde_json::to_vec(&v)
        {
            b.0 = bytes;
        }
        n
    }

    fn redact_value(&self, v: &mut serde_json::Value, depth: usize) -> usize {
        if depth >= MAX_JSON_DEPTH {
            return 0;
        }
        match v {
            serde_json::Value::Object(map) => {
                let mut n = 0;
                for (k, val) in map.iter_mut() {
                    if self.json_keys.iter().any(|r| k.eq_ignore_ascii_case(r)) {
                        if !matches!(val, serde_json::Value::String(s) if s == REDACTED) {
                            *val = serde_json::Value::String(REDACTED.to_string());
                            n += 1;
                        }
                    } else {
                        n += self.redact_value(val, depth + 1);
                    }
                }
                n
            }
            serde_json::Value::Array(items) => items
                .iter_mut()
                .map(|i| self.redact_value(i, depth + 1))
                .sum(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        let mut req = Headers::new();
        req.push("Host", "api");
        req.push("Authorization", "Bearer abc.def");
        req.push("cookie", "session=1");
        req.push("X-Api-Key", "k-123");
        let mut resp = Headers::new();
        resp.push("Set-Cookie", "session=2; HttpOnly");
        resp.push("Content-Type", "application/json");
        Entry {
            request_headers: Some(req),
            response_headers: Some(resp),
            request_body: Some(Body(
                br#"{"user":"ann","password":"hunter2","nested":[{"Token":"t"},{"ok":1}]}"#
                    .to_vec(),
            )),
            response_body: Some(Body(b"password=plain-text-form".to_vec())),
            ..Entry::default()
        }
    }

    #[test]
    fn default_headers_and_json_keys_are_redacted() {
        let mut e = entry();
        let n = Redactor::default().redact(&mut e);
        let req = e.request_headers.as_ref().unwrap();
        assert_eq!(req.get("authorization"), Some(REDACTED));
        assert_eq!(req.get("cookie"), Some(REDACTED));
        assert_eq!(req.get("host"), Some("api"));
        assert_eq!(req.get("x-api-key"), Some("k-123"), "not configured");
        let resp = e.response_headers.as_ref().unwrap();
        assert_eq!(resp.get("set-cookie"), Some(REDACTED));
        let body: serde_json::Value =
            serde_json::from_slice(&e.request_body.as_ref().unwrap().0).unwrap();
        assert_eq!(body["password"], REDACTED);
        assert_eq!(body["nested"][0]["Token"], REDACTED);
        assert_eq!(body["user"], "ann");
        // Not JSON: left alone.
        assert_eq!(
            e.response_body.as_ref().unwrap().0,
            b"password=plain-text-form"
        );
        assert_eq!(n, 5);
        // Idempotent.
        assert_eq!(Redactor::default().redact(&mut e), 0);
    }

    #[test]
    fn configured_names_are_added_and_redaction_can_be_empty() {
        let mut e = entry();
        let r = Redactor::with_defaults_and(&["X-API-KEY".into()], &["user".into()]);
        r.redact(&mut e);
        assert_eq!(
            e.request_headers.as_ref().unwrap().get("x-api-key"),
            Some(REDACTED)
        );
        let body: serde_json::Value =
            serde_json::from_slice(&e.request_body.as_ref().unwrap().0).unwrap();
        assert_eq!(body["user"], REDACTED);

        let mut e = entry();
        let before = e.clone();
        assert_eq!(Redactor::new([], []).redact(&mut e), 0);
        assert_eq!(e, before);
    }

    proptest::proptest! {
        #[test]
        fn any_body_is_survived(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut e = Entry { request_body: Some(Body(body)), ..Entry::default() };
            let _ = Redactor::default().redact(&mut e);
        }
    }
}
