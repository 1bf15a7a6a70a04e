//! How values, siblings and results look on a terminal and in `--json`.
//!
//! Pure string building, tested; never prints and never talks to the cluster.
//!
//! Must not: print, or talk to the cluster.
use geokv::client::{GetResult, Sibling};
use serde_json::{json, Value};

/// A value for a terminal: UTF-8 as is; UTF-8 with control characters as a
/// quoted, escaped string (`"a\nb"`); anything else as `hex:…`.
pub fn value(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        Ok(text) => format!("{text:?}"),
        Err(_) => format!("hex:{}", hex(bytes)),
    }
}

/// Lower-case hex, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The lines `geokv get` prints: one per sibling, then `context: <b64>`.
pub fn get_lines(read: &GetResult) -> Vec<String> {
    let mut lines = Vec::with_capacity(read.siblings.len() + 2);
    if read.siblings.is_empty() {
        lines.push("(not found)".to_string());
    }
    let total = read.siblings.len();
    for (i, sibling) in read.siblings.iter().enumerate() {
        let shown = match &sibling.value {
            Some(bytes) if !sibling.tombstone => value(bytes),
            _ => "(tombstone)".to_string(),
        };
        lines.push(format!(
            "[{}/{total}] ts={} {shown}",
            i + 1,
            sibling.timestamp_ms
        ));
    }
    lines.push(format!("context: {}", read.context.to_base64()));
    lines
}

/// `geokv get --json`: values as UTF-8 (`value`, null when not UTF-8 or a
/// tombstone) and always exactly as base64 (`value_base64`).
pub fn get_json(key: &str, read: &GetResult) -> Value {
    json!({
        "key": key,
        "siblings": read.siblings.iter().map(sibling_json).collect::<Vec<_>>(),
        "context": read.context.to_base64(),
        "replicas_answered": read.replicas_answered,
        "coordinator": read.coordinator,
    })
}

fn sibling_json(sibling: &Sibling) -> Value {
    use base64::Engine as _;
    let bytes = sibling.value.as_deref();
    json!({
        "value": bytes.and_then(|b| std::str::from_utf8(b).ok()),
        "value_base64": bytes.map(|b| base64::engine::general_purpose::STANDARD.encode(b)),
        "tombstone": sibling.tombstone,
        "timestamp_ms": sibling.timestamp_ms,
    })
}

/// The lines `geokv put` / `geokv delete` print.
pub fn write_lines(what: &str, acks: u32, coordinator: &str, context_b64: &str) -> Vec<String> {
    vec![
        format!("{what}: {acks} ack(s) via {coordinator}"),
        format!("context: {context_b64}"),
    ]
}

/// A plain table (no box drawing, columns padded to their widest cell) with
/// these headers, for `add_row` and `to_string`.
pub fn table<const N: usize>(headers: [&str; N]) -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING)
        .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
        .set_header(headers);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use geokv::client::CausalContext;

    fn read(siblings: Vec<Sibling>) -> GetResult {
        GetResult {
            siblings,
            context: CausalContext::from_bytes(vec![1, 2, 3]),
            replicas_answered: 2,
            coordinator: "http://n1".into(),
        }
    }

    #[test]
    fn table_columns_line_up() {
        let mut t = table(["NODE", "STATE"]);
        t.add_row(["dc1-n1", "up"]);
        t.add_row(["a-much-longer-id", "down"]);
        let lines: Vec<String> = t
            .to_string()
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect();
        assert_eq!(lines.len(), 3);
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("up"), Some(col));
        assert_eq!(lines[2].find("down"), Some(col));
    }

    #[test]
    fn values_render_as_text_quoted_text_or_hex() {
        assert_eq!(value(b"hello world"), "hello world");
        assert_eq!(value(b"a\nb"), "\"a\\nb\"");
        assert_eq!(value(&[0xff, 0x00, 0x10]), "hex:ff0010");
        assert_eq!(value(b""), "");
    }

    #[test]
    fn get_lists_siblings_tombstones_and_context() {
        let lines = get_lines(&read(vec![
            Sibling {
                value: Some(Bytes::from_static(b"v1")),
                tombstone: false,
                timestamp_ms: 10,
            },
            Sibling {
                value: None,
                tombstone: true,
                timestamp_ms: 11,
            },
        ]));
        assert_eq!(
            lines,
            ["[1/2] ts=10 v1", "[2/2] ts=11 (tombstone)", "context: AQID"]
        );
        assert_eq!(get_lines(&read(vec![])), ["(not found)", "context: AQID"]);
    }

    #[test]
    fn get_json_keeps_exact_bytes() {
        let out = get_json(
            "k",
            &read(vec![Sibling {
                value: Some(Bytes::from_static(&[0xff])),
                tombstone: false,
                timestamp_ms: 1,
            }]),
        );
        assert_eq!(out["siblings"][0]["value"], Value::Null);
        assert_eq!(out["siblings"][0]["value_base64"], "/w==");
        assert_eq!(out["context"], "AQID");
    }
}
