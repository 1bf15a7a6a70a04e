//! How results are shown: the per-operation table of a phase, the JSON
//! document of `geokv bench run`, and the side-by-side table of
//! `geokv bench compare`.
//!
//! Pure formatting over [`PhaseReport`]s; columns through comfy-table, as
//! wide as their widest cell. Must not measure or print: callers write the
//! returned strings where they want.
use std::fmt::Write as _;

use comfy_table::{CellAlignment, ContentArrangement, Table};
use serde::Serialize;

use super::stats::{LatencySummary, PhaseReport};

/// The JSON document `geokv bench run --json FILE` writes.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub workload: String,
    pub distribution: String,
    pub records: u64,
    pub operations: Option<u64>,
    pub duration_secs: Option<f64>,
    pub concurrency: usize,
    pub value_size: usize,
    pub target_rate: Option<f64>,
    pub read_consistency: String,
    pub write_consistency: String,
    pub keyspace: String,
    pub endpoints: Vec<String>,
    /// Absent with `--skip-load`.
    pub load: Option<PhaseReport>,
    pub run: PhaseReport,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A plain table (no box drawing, columns as wide as their widest cell)
/// with these headers; `markdown`: with `|` borders and a header rule.
pub fn table<const N: usize>(headers: [&str; N], markdown: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(if markdown {
        comfy_table::presets::ASCII_MARKDOWN
    } else {
        comfy_table::presets::NOTHING
    })
    .set_content_arrangement(ContentArrangement::Disabled)
    .set_header(headers);
    t
}

/// Right-aligns every column from `first` on (the numbers), header included.
pub fn numbers_right(t: &mut Table, first: usize) {
    for column in t.column_iter_mut().skip(first) {
        column.set_cell_alignment(CellAlignment::Right);
    }
}

fn row(name: &str, s: &LatencySummary) -> Vec<String> {
    vec![
        name.to_string(),
        s.count.to_string(),
        format!("{:.1}", s.throughput),
        format!("{:.3}", ms(s.p50_us)),
        format!("{:.3}", ms(s.p95_us)),
        format!("{:.3}", ms(s.p99_us)),
        format!("{:.3}", ms(s.p999_us)),
        format!("{:.3}", ms(s.max_us)),
    ]
}

/// The table of one phase: a headline, one row per operation kind and a
/// total row, then errors by code.
pub fn phase_table(name: &str, p: &PhaseReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{name}: {} ops in {:.2} s = {:.1} ops/s; {} errors; {} reads saw siblings; {} reads found nothing",
        p.operations, p.elapsed_secs, p.throughput, p.error_count, p.siblings_seen, p.reads_not_found
    );
    let headers = [
        "op", "count", "ops/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms",
    ];
    let mut t = table(headers, false);
    for (op, s) in &p.by_op {
        t.add_row(row(op, s));
    }
    if p.by_op.len() > 1 {
        t.add_row(row("TOTAL", &p.overall));
    }
    numbers_right(&mut t, 1);
    let _ = writeln!(out, "{t}");
    for (code, n) in &p.errors {
        let _ = writeln!(out, "  error {code}: {n}");
    }
    out
}

/// One line of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// What ran: `engine (in-process)`, `1 node rf1`, `6 nodes 2 DCs`.
    pub setup: String,
    /// Consistency level for reads and writes (empty for the engine).
    pub level: String,
    pub report: PhaseReport,
}

/// The comparison document (`--json` of `geokv bench compare`).
#[derive(Debug, Clone, Serialize)]
pub struct CompareReport {
    pub workload: String,
    pub records: u64,
    pub operations: Option<u64>,
    pub concurrency: usize,
    pub value_size: usize,
    pub wan_delay_ms: u64,
    /// The six-node cluster ran TLS + auth.
    pub secure: bool,
    /// The `geokv` binary the nodes ran (`--node-build`).
    pub node_exe: String,
    pub rows: Vec<CompareRow>,
    /// Fresh connections' first request vs a warm one (`--reconnects`).
    pub reconnect: Option<super::secure::Reconnect>,
}

/// The side-by-side table: throughput, its ratio to the first row (the
/// engine), p50 and p99 of every operation together, errors.
pub fn compare_table(c: &CompareReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workload {}, {} records, {} ops per row, concurrency {}, {}-byte values, inter-DC delay {} ms one way",
        c.workload,
        c.records,
        c.operations.map_or("timed".into(), |n| n.to_string()),
        c.concurrency,
        c.value_size,
        c.wan_delay_ms
    );
    let headers = [
        "setup",
        "level",
        "ops/s",
        "vs engine",
        "p50 ms",
        "p99 ms",
        "errors",
    ];
    let mut t = table(headers, false);
    let base = c.rows.first().map_or(0.0, |r| r.report.throughput);
    for r in &c.rows {
        let ratio = if base > 0.0 {
            r.report.throughput / base
        } else {
            0.0
        };
        t.add_row(vec![
            r.setup.clone(),
            r.level.clone(),
            format!("{:.1}", r.report.throughput),
            format!("{ratio:.3}x"),
            format!("{:.3}", ms(r.report.overall.p50_us)),
            format!("{:.3}", ms(r.report.overall.p99_us)),
            r.report.error_count.to_string(),
        ]);
    }
    numbers_right(&mut t, 2);
    let _ = writeln!(out, "{t}");
    if let Some(rc) = &c.reconnect {
        let _ = writeln!(
            out,
            "reconnect{}: {} fresh connections, connect + first GET p50 {:.3} ms p99 {:.3} ms; warm GET p50 {:.3} ms",
            if c.secure { " (TLS+auth)" } else { "" },
            rc.samples,
            rc.first_p50_ms,
            rc.first_p99_ms,
            rc.warm_p50_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Recorder;
    use crate::workload::OpKind;
    use std::time::Duration;

    fn phase() -> PhaseReport {
        let mut r = Recorder::new();
        r.record_ok(OpKind::Read, Duration::from_millis(2), Duration::ZERO);
        r.record_ok(OpKind::Update, Duration::from_millis(4), Duration::ZERO);
        r.record_error("UNAVAILABLE");
        r.summarize(Duration::from_secs(1))
    }

    #[test]
    fn json_has_the_documented_fields() {
        let report = RunReport {
            workload: "a".into(),
            distribution: "zipfian".into(),
            records: 10,
            operations: Some(2),
            duration_secs: None,
            concurrency: 1,
            value_size: 100,
            target_rate: None,
            read_consistency: "ONE".into(),
            write_consistency: "ONE".into(),
            keyspace: "default".into(),
            endpoints: vec!["http://127.0.0.1:7070".into()],
            load: None,
            run: phase(),
        };
        let v = serde_json::to_value(&report).unwrap();
        let run = &v["run"];
        assert_eq!(run["operations"], 2);
        assert_eq!(run["errors"]["UNAVAILABLE"], 1);
        for field in [
            "count",
            "throughput",
            "p50_us",
            "p95_us",
            "p99_us",
            "p999_us",
            "max_us",
        ] {
            assert!(run["by_op"]["READ"][field].is_number(), "{field}");
        }
        assert!(run["timeline"].is_array());
        assert!(v["load"].is_null());
        assert_eq!(v["read_consistency"], "ONE");
    }

    #[test]
    fn tables_show_every_op_and_the_ratio() {
        let t = phase_table("run", &phase());
        assert!(t.contains("READ") && t.contains("UPDATE") && t.contains("TOTAL"));
        assert!(t.contains("error UNAVAILABLE: 1"));
        let c = CompareReport {
            workload: "a".into(),
            records: 10,
            operations: Some(2),
            concurrency: 1,
            value_size: 100,
            wan_delay_ms: 50,
            secure: true,
            node_exe: "/t/release/geokv".into(),
            reconnect: Some(crate::secure::Reconnect {
                samples: 3,
                first_p50_ms: 2.5,
                first_p99_ms: 4.0,
                warm_p50_ms: 0.5,
            }),
            rows: vec![
                CompareRow {
                    setup: "engine".into(),
                    level: String::new(),
                    report: phase(),
                },
                CompareRow {
                    setup: "6 nodes".into(),
                    level: "QUORUM".into(),
                    report: phase(),
                },
            ],
        };
        let t = compare_table(&c);
        assert!(t.contains("1.000x") && t.contains("QUORUM") && t.contains("50 ms"));
        assert!(t.contains("reconnect (TLS+auth): 3 fresh connections, connect + first GET p50 2.500 ms p99 4.000 ms"), "{t}");
    }

    /// Where the `n`th whitespace-separated word of `line` ends.
    fn word_end(line: &str, n: usize) -> usize {
        let start = line.len() - line.trim_start().len();
        let mut words = line[start..].split_whitespace();
        let word = words.nth(n).expect("word");
        let at = word.as_ptr() as usize - line.as_ptr() as usize;
        at + word.len()
    }

    #[test]
    fn phase_columns_line_up_whatever_the_count() {
        let mut p = phase();
        p.by_op.get_mut("READ").expect("READ").count = 12_345_678_901;
        let t = phase_table("run", &p);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[2].contains("READ") && lines[3].contains("UPDATE"),
            "{t}"
        );
        let count_end = word_end(lines[1], 1);
        assert_eq!(&lines[1][count_end - 5..count_end], "count", "{t}");
        for row in &lines[2..4] {
            assert_eq!(word_end(row, 1), count_end, "{t}");
        }
    }

    #[test]
    fn compare_columns_line_up_whatever_the_setup_length() {
        let row = |setup: &str, level: &str| CompareRow {
            setup: setup.into(),
            level: level.into(),
            report: phase(),
        };
        let c = CompareReport {
            workload: "a".into(),
            records: 10,
            operations: Some(2),
            concurrency: 1,
            value_size: 100,
            wan_delay_ms: 0,
            secure: false,
            node_exe: "/t/release/geokv".into(),
            reconnect: None,
            rows: vec![
                row("engine (in-process)", ""),
                row("6 nodes 2 DCs, a label over twenty-two", "LOCAL_QUORUM"),
                row("1 node rf1", "ONE"),
            ],
        };
        let t = compare_table(&c);
        let lines: Vec<&str> = t.lines().collect();
        let level = lines[1].find("level").expect("header");
        assert_eq!(lines[3].find("LOCAL_QUORUM"), Some(level), "{t}");
        assert_eq!(lines[4].find("ONE"), Some(level), "{t}");
    }
}
