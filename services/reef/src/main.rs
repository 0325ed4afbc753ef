//! `reef`: one binary for every part of Reef.

mod correlator;
mod dissect;
mod hub;
mod local;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// Dissection allocates many small strings per entry; mimalloc makes that cheaper than
// glibc's allocator (about a fifth of `reef dissect`'s time went to malloc/free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "reef",
    version,
    about = "Kubernetes API-traffic analyzer: captures, dissects and shows the traffic of a cluster",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Dissect capture files (pcap, pcapng) into entries.
    Dissect(dissect::Args),
    /// Capture live (or replay captures) and publish entries and flows to NATS JetStream.
    Worker(Box<worker::Args>),
    /// Join worker entries with Kubernetes and process context; publish to REEF_ENRICHED.
    Correlator(Box<correlator::Args>),
    /// Serve the dashboard, WebSocket streams and the API from REEF_ENRICHED.
    Hub(Box<hub::Args>),
    /// Worker, correlator and hub in one process on this machine: no NATS, no cluster.
    Local(Box<local::Args>),
    /// Print the entry schema: its columns, or the JSON Schema.
    Schema {
        /// Print the JSON Schema (schemas/entry.v1.schema.json) instead of the column list.
        #[arg(long)]
        json_schema: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dissect(args) => dissect::run(args),
        Command::Worker(args) => worker::run(*args),
        Command::Correlator(args) => correlator::run(*args),
        Command::Hub(args) => hub::run(*args),
        Command::Local(args) => local::run(*args),
        Command::Schema { json_schema } => print_schema(json_schema),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("reef: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_schema(json_schema: bool) -> anyhow::Result<ExitCode> {
    if json_schema {
        println!(
            "{}",
            serde_json::to_string_pretty(&reef_schema::entry_json_schema())?
        );
    } else {
        for c in reef_schema::COLUMNS {
            let field = reef_schema::entry_schema();
            let ty = field
                .field_with_name(c.name)
                .map(|f| f.data_type().to_string())
                .unwrap_or_default();
            println!(
                "{:<24} {:<28} {}",
                c.name,
                ty,
                c.doc.trim().replace('\n', " ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
