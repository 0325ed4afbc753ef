//! Golden tests: every capture of the corpus gives exactly the entries recorded in
//! `integration/cases/<capture>/expected.txt`.
//!
//! The expected files were produced by Reef and reviewed against tshark's view of the
//! same captures (`../shared/tools/check_truth.py`); where the two differ, the
//! protocol's test module says why. After a deliberate change, regenerate with
//! `REEF_BLESS=1 cargo test -p reef-integration golden` (or `REEF_BLESS=dns_` to
//! rewrite only the captures whose names start with `dns_`) and review the diff.

use reef_integration::{case_dir, corpus_dir, dissect_file, golden_line};

#[test]
fn corpus_matches_golden_files() {
    // REEF_BLESS=1 rewrites every golden file; any other value only those of the
    // captures whose names start with it.
    let bless = std::env::var("REEF_BLESS").ok();
    let blessed = |stem: &str| match bless.as_deref() {
        Some("1") => true,
        Some(prefix) => stem.starts_with(prefix),
        None => false,
    };
    let mut captures: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".pcap") || name.ends_with(".pcapng")
        })
        .collect();
    captures.sort();
    assert!(
        captures.len() >= 25,
        "expected the HTTP captures of the corpus"
    );
    let mut failures = Vec::new();
    for cap in captures {
        let stem = cap
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let (entries, _) = dissect_file(&cap);
        let got: String = entries.iter().map(|e| golden_line(e) + "\n").collect();
        let path = case_dir(&stem).join("expected.txt");
        if blessed(&stem) {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let Ok(want) = std::fs::read_to_string(&path) else {
            failures.push(format!("{stem}: no golden file {}", path.display()));
            continue;
        };
        if got != want {
            let first = got
                .lines()
                .zip(want.lines())
                .find(|(g, w)| g != w)
                .map(|(g, w)| format!("\n  got:  {g}\n  want: {w}"))
                .unwrap_or_else(|| {
                    format!(
                        " ({} lines, expected {})",
                        got.lines().count(),
                        want.lines().count()
                    )
                });
            failures.push(format!("{stem}:{first}"));
        }
    }
    assert!(
        failures.is_empty(),
        "entries differ from the golden files (REEF_BLESS=1 regenerates them):\n{}",
        failures.join("\n")
    );
}
