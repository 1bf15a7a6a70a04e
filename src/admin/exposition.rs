//! Reading Prometheus text exposition back into series: the one parser of
//! the crate, used by the status page's sampler ([`super::status_history`]:
//! the recorder only renders text), the benchmarks' scrapes and the
//! integration tests' `metric_at`.
//!
//! Owns [`parse`], [`Series`] and [`sum`]: names match exactly (a family's
//! `_total` or `_bucket` series are other names), label values are
//! unescaped. Must not: fetch anything or know what a family means.
use std::collections::BTreeMap;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Series {
    /// The value of label `key` ("" when absent).
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// Every sample line of `text` (comments, blank and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Series> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(line)
        .collect()
}

/// The series of family-exact `name` in `series`.
pub fn named<'a>(series: &'a [Series], name: &'a str) -> impl Iterator<Item = &'a Series> + 'a {
    series.iter().filter(move |s| s.name == name)
}

/// The sum of the series named exactly `name` in `text` whose labels
/// include every pair of `labels` (`&[]`: every series of that name);
/// `None` when there is none.
pub fn sum(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse(text)
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .fold(None, |total, s| Some(total.unwrap_or(0.0) + s.value))
}

fn line(l: &str) -> Option<Series> {
    let name_end = l.find(['{', ' ']).unwrap_or(l.len());
    let name = &l[..name_end];
    let (labels, rest) = if l[name_end..].starts_with('{') {
        labels(&l[name_end + 1..])?
    } else {
        (BTreeMap::new(), &l[name_end..])
    };
    let value = match rest.split_whitespace().next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    (!name.is_empty()).then(|| Series {
        name: name.to_string(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` → the labels and what follows the `}`.
fn labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((out, rest));
        }
        let (key, rest) = s.split_once('=')?;
        let mut chars = rest.strip_prefix('"')?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.insert(key.trim().to_string(), value);
        s = &rest[end + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_and_values_exactly() {
        let text = "# HELP geokv_x x\n# TYPE geokv_x gauge\n\
            geokv_x{dest=\"dc:dc2\",lane=\"backlog\"} 7\n\
            geokv_x_total{dest=\"dc:dc2\"} 9\n\
            geokv_y 1.5\n\
            geokv_z{q=\"a \\\"b\\\", c\\\\d\"} 2\n\
            geokv_h_bucket{le=\"+Inf\"} 3\n\
            garbage{\n";
        let s = parse(text);
        assert_eq!(s.len(), 5, "{s:?}");
        let x: Vec<_> = named(&s, "geokv_x").collect();
        assert_eq!(x.len(), 1);
        assert_eq!(x[0].label("dest"), "dc:dc2");
        assert_eq!(x[0].label("lane"), "backlog");
        assert_eq!(x[0].value, 7.0);
        assert_eq!(named(&s, "geokv_y").next().unwrap().value, 1.5);
        assert_eq!(
            named(&s, "geokv_z").next().unwrap().label("q"),
            "a \"b\", c\\d"
        );
        assert_eq!(
            named(&s, "geokv_h_bucket").next().unwrap().label("le"),
            "+Inf"
        );
    }

    #[test]
    fn sum_takes_exact_names_and_every_label_pair_asked() {
        let text = "foo 1\nfoo_total 2\nfoo{a=\"x\",b=\"y\"} 4\nfoo{a=\"x\"} 8\nfoobar 16\n\
            bar{} 5\n";
        assert_eq!(sum(text, "foo", &[]), Some(13.0));
        assert_eq!(sum(text, "foo", &[("a", "x")]), Some(12.0));
        assert_eq!(sum(text, "foo", &[("a", "x"), ("b", "y")]), Some(4.0));
        assert_eq!(sum(text, "foo", &[("b", "")]), None);
        assert_eq!(sum(text, "foo_total", &[]), Some(2.0));
        assert_eq!(sum(text, "bar", &[]), Some(5.0));
        assert_eq!(sum(text, "fo", &[]), None);
    }
}
