//! Reef's end-to-end tests, in one binary to keep builds cheap.
//!
//! The corpus tests read `../shared/corpus` (real captures from public projects, see its
//! MANIFEST.md); `integration/cases/` holds Reef's own expected outputs and fixtures.

// A test's helpers fail the test by panicking, like its asserts.
#![allow(clippy::unwrap_used)]

mod amqp;
mod capture;
mod correlator;
mod dns;
mod golden;
mod grpc;
mod hard_cases;
mod http2;
mod hub;
mod icmp;
mod k8s_watch;
mod kafka;
mod live_tools;
mod local;
mod mongodb;
mod mqtt;
mod mysql;
mod postgresql;
mod redis;
mod tls;
mod websocket;
mod worker;
