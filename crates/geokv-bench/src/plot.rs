//! SVG plots of a phase (`--plot-dir`): the latency CDF of each operation
//! kind (log-scale latency against percentile) and successful operations per
//! second over the run.
//!
//! Owns file output of plots only; plotters' errors become [`BenchError::Plot`].
//! Must not: run or measure anything: it draws what a phase recorded.
use std::path::Path;

use plotters::prelude::*;

use super::stats::Recorder;
use super::BenchError;

fn plot_err(path: &Path) -> impl Fn(String) -> BenchError + '_ {
    move |reason| BenchError::Plot {
        path: path.to_path_buf(),
        reason,
    }
}

/// Writes the latency CDF of every operation kind to `path`.
pub fn latency_cdf(path: &Path, title: &str, rec: &Recorder) -> Result<(), BenchError> {
    let curves = rec
        .latencies()
        .iter()
        .map(|(kind, h)| (kind.name().to_string(), cdf_points(h)))
        .collect();
    draw_cdf(path, title, curves)
}

/// Writes one latency CDF per compared setup (every operation kind merged)
/// to `path`: the side-by-side view of `geokv bench compare`.
pub fn compare_cdf(
    path: &Path,
    title: &str,
    rows: &[(String, Recorder)],
) -> Result<(), BenchError> {
    let mut curves = Vec::new();
    for (label, rec) in rows {
        let mut merged: Option<hdrhistogram::Histogram<u64>> = None;
        for h in rec.latencies().values() {
            match &mut merged {
                Some(m) => m.add(h).map_err(|e| BenchError::Plot {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?,
                None => merged = Some(h.clone()),
            }
        }
        if let Some(h) = merged {
            curves.push((label.clone(), cdf_points(&h)));
        }
    }
    draw_cdf(path, title, curves)
}

/// (latency in ms, percentile) points of a histogram recorded in µs.
fn cdf_points(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to().max(1) as f64 / 1000.0, v.percentile()))
        .collect()
}

fn draw_cdf(
    path: &Path,
    title: &str,
    curves: Vec<(String, Vec<(f64, f64)>)>,
) -> Result<(), BenchError> {
    let err = plot_err(path);
    let max_ms = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0f64, f64::max);
    let min_ms = curves
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(max_ms, f64::min)
        .min(max_ms / 2.0);
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((min_ms..max_ms * 1.1).log_scale(), 0f64..100f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("latency (ms, log scale)")
        .y_desc("percentile")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, (name, pts)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Writes successful operations per second over the phase to `path`.
pub fn throughput(path: &Path, title: &str, timeline: &[u64]) -> Result<(), BenchError> {
    let err = plot_err(path);
    let max = timeline.iter().copied().max().unwrap_or(1).max(1) as f64;
    let secs = timeline.len().max(2) as f64;
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(65)
        .build_cartesian_2d(0f64..secs, 0f64..max * 1.1)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the phase began")
        .y_desc("ops/s")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    // Each bucket is plotted at its midpoint; the last one may be partial.
    let pts = timeline
        .iter()
        .enumerate()
        .map(|(i, n)| (i as f64 + 0.5, *n as f64));
    chart
        .draw_series(LineSeries::new(pts, BLUE.stroke_width(2)))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}
