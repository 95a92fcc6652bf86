//! `helios-loadgen-chart`: small SVG charts from `helios-loadgen --json`
//! reports (and the reference client's, which has the same `spectrum`
//! field), for `compare.sh`, `latency.sh` and BENCHMARKS.md.
//!
//!     helios-loadgen-chart spectrum --out FILE.svg --title T LABEL=report.json...
//!     helios-loadgen-chart series   --out FILE.svg --title T LABEL=report.json...
//!
//! `spectrum`: latency (log scale) against the percentile on HdrHistogram's
//! axis (90 %, 99 %, 99.9 % … equally spaced), corrected as a solid line and,
//! where the report has it, uncorrected as a thin one. `series`: responses
//! per second and p99 per second over the run, one line per report.
//!
//! Built only with the `charts` feature (plotters, SVG backend only), so
//! the generator itself never compiles a plotting crate.

use std::path::PathBuf;
use std::process::ExitCode;

use plotters::prelude::*;
use serde_json::Value;

/// Chart size in pixels: small enough for a page, and a small file.
const WIDTH_PX: u32 = 640;
/// Height of the spectrum chart.
const SPECTRUM_HEIGHT_PX: u32 = 360;
/// Height of the two-panel series chart.
const SERIES_HEIGHT_PX: u32 = 480;
/// Line colours, one per report, in order.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];
/// Where the maximum (percentile 100) sits on the spectrum's x axis: just
/// past 99.999 % (x = 5).
const MAX_X: f64 = 5.4;
/// Most reports on one chart.
const MAX_REPORTS: usize = PALETTE.len();

struct Input {
    label: String,
    report: Value,
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("helios-loadgen-chart: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let usage = "usage: helios-loadgen-chart spectrum|series --out FILE.svg [--title T] LABEL=report.json...";
    let mut it = args.into_iter();
    let kind = it.next().ok_or(usage)?;
    let mut out = None;
    let mut title = String::new();
    let mut inputs = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = Some(PathBuf::from(it.next().ok_or(usage)?)),
            "--title" => title = it.next().ok_or(usage)?,
            _ => {
                let (label, path) = a.split_once('=').ok_or(usage)?;
                let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                let report: Value = serde_json::from_str(text.trim())
                    .map_err(|e| format!("{path}: not a JSON report: {e}"))?;
                inputs.push(Input {
                    label: label.to_string(),
                    report,
                });
            }
        }
    }
    let out = out.ok_or(usage)?;
    if inputs.is_empty() || inputs.len() > MAX_REPORTS {
        return Err(format!("1 to {MAX_REPORTS} reports, got {}", inputs.len()));
    }
    match kind.as_str() {
        "spectrum" => spectrum(&out, &title, &inputs),
        "series" => series(&out, &title, &inputs),
        _ => Err(usage.to_string()),
    }
}

/// HdrHistogram's percentile axis: log10(1 / (1 − p)).
fn percentile_x(p: f64) -> f64 {
    if p >= 100.0 {
        MAX_X
    } else {
        (1.0 / (1.0 - p / 100.0)).log10()
    }
}

/// `(x, corrected ms, uncorrected ms)` of a report's spectrum.
fn spectrum_points(report: &Value) -> Result<Vec<(f64, f64, Option<f64>)>, String> {
    let points = report["spectrum"]
        .as_array()
        .ok_or("a report without a spectrum")?;
    points
        .iter()
        .map(|p| {
            let pct = p["percentile"]
                .as_f64()
                .ok_or("a spectrum point without a percentile")?;
            let c = p["corrected_us"]
                .as_f64()
                .ok_or("a spectrum point without corrected_us")?;
            let u = p["uncorrected_us"].as_f64();
            Ok((percentile_x(pct), c / 1e3, u.map(|u| u / 1e3)))
        })
        .collect()
}

fn spectrum(out: &PathBuf, title: &str, inputs: &[Input]) -> Result<(), String> {
    let curves = inputs
        .iter()
        .map(|i| spectrum_points(&i.report))
        .collect::<Result<Vec<_>, _>>()?;
    let all = curves
        .iter()
        .flatten()
        .flat_map(|&(_, c, u)| [Some(c), u])
        .flatten();
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = ((lo * 0.8).max(0.001), (hi * 1.25).max(0.01));
    let root = SVGBackend::new(out, (WIDTH_PX, SPECTRUM_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(32)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..MAX_X + 0.1, (lo..hi).log_scale())
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .max_light_lines(0)
        .x_label_formatter(&|x| match x.round() as i64 {
            0 => "0%".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            5 => "99.999%".into(),
            _ => String::new(),
        })
        .y_desc("latency (ms)")
        .x_desc("percentile (the right end: max)")
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(draw_err)?;
    for (i, (input, curve)) in inputs.iter().zip(&curves).enumerate() {
        let color = PALETTE[i];
        chart
            .draw_series(LineSeries::new(
                curve.iter().map(|&(x, c, _)| (x, c)),
                color.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label(format!("{} (corrected)", input.label))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        if curve.iter().all(|p| p.2.is_some()) {
            let light = color.mix(0.5);
            chart
                .draw_series(LineSeries::new(
                    curve.iter().map(|&(x, _, u)| (x, u.unwrap_or(0.0))),
                    light.stroke_width(1),
                ))
                .map_err(draw_err)?
                .label(format!("{} (uncorrected)", input.label))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], light.stroke_width(1))
                });
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

/// `(middle of the second, requests_per_s, p99 ms)` of a report's series.
fn series_points(report: &Value) -> Result<Vec<(f64, f64, f64)>, String> {
    let points = report["series"]
        .as_array()
        .ok_or("a report without a series")?;
    Ok(points
        .iter()
        // The last, partial second says little about a rate.
        .filter(|p| p["length_s"].as_f64().unwrap_or(0.0) >= 0.5)
        .map(|p| {
            (
                p["t_s"].as_f64().unwrap_or(0.0) + 0.5,
                p["requests_per_s"].as_f64().unwrap_or(0.0),
                p["p99_us"].as_f64().unwrap_or(0.0) / 1e3,
            )
        })
        .collect())
}

fn series(out: &PathBuf, title: &str, inputs: &[Input]) -> Result<(), String> {
    let curves = inputs
        .iter()
        .map(|i| series_points(&i.report))
        .collect::<Result<Vec<_>, _>>()?;
    let t_max = curves.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max) + 0.5;
    let rps_max = curves.iter().flatten().map(|p| p.1).fold(1.0f64, f64::max) * 1.15;
    let p99 = curves.iter().flatten().map(|p| p.2).filter(|&v| v > 0.0);
    let (lo, hi) = p99.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = ((lo * 0.8).clamp(0.001, 1e6), (hi * 1.25).max(0.01));
    let root = SVGBackend::new(out, (WIDTH_PX, SERIES_HEIGHT_PX)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let root = root.titled(title, ("sans-serif", 16)).map_err(draw_err)?;
    let (top, bottom) = root.split_vertically(SERIES_HEIGHT_PX / 2 - 16);
    let mut rate = ChartBuilder::on(&top)
        .margin(8)
        .x_label_area_size(20)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..t_max, 0f64..rps_max)
        .map_err(draw_err)?;
    rate.configure_mesh()
        .max_light_lines(0)
        .y_desc("responses/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(draw_err)?;
    let mut lat = ChartBuilder::on(&bottom)
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..t_max, (lo..hi).log_scale())
        .map_err(draw_err)?;
    lat.configure_mesh()
        .max_light_lines(0)
        .y_desc("p99 (ms)")
        .x_desc("seconds")
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(draw_err)?;
    for (i, (input, curve)) in inputs.iter().zip(&curves).enumerate() {
        let color = PALETTE[i];
        rate.draw_series(LineSeries::new(
            curve.iter().map(|&(t, r, _)| (t, r)),
            color.stroke_width(2),
        ))
        .map_err(draw_err)?
        .label(input.label.clone())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        lat.draw_series(LineSeries::new(
            curve.iter().filter(|p| p.2 > 0.0).map(|&(t, _, p)| (t, p)),
            color.stroke_width(2),
        ))
        .map_err(draw_err)?;
    }
    rate.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(draw_err)?;
    root.present().map_err(draw_err)
}

fn draw_err<E: std::fmt::Debug>(e: E) -> String {
    format!("drawing failed: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_axis_spaces_the_nines_evenly() {
        assert_eq!(percentile_x(0.0), 0.0);
        assert!((percentile_x(90.0) - 1.0).abs() < 1e-9);
        assert!((percentile_x(99.9) - 3.0).abs() < 1e-9);
        assert!((percentile_x(99.999) - 5.0).abs() < 1e-6);
        assert_eq!(percentile_x(100.0), MAX_X);
    }

    #[test]
    fn both_charts_draw_from_reports() {
        let dir = tempfile::tempdir().unwrap();
        let report: Value = serde_json::from_str(
            r#"{"spectrum":[{"percentile":0,"corrected_us":40,"uncorrected_us":30},
                            {"percentile":50,"corrected_us":90,"uncorrected_us":70},
                            {"percentile":99,"corrected_us":400,"uncorrected_us":300},
                            {"percentile":100,"corrected_us":2000,"uncorrected_us":1500}],
                "series":[{"t_s":0,"length_s":1.0,"requests_per_s":2000,"p99_us":400},
                          {"t_s":1,"length_s":1.0,"requests_per_s":1990,"p99_us":380}]}"#,
        )
        .unwrap();
        let reference: Value = serde_json::from_str(
            r#"{"spectrum":[{"percentile":0,"corrected_us":35},{"percentile":100,"corrected_us":900}]}"#,
        )
        .unwrap();
        let inputs = [
            Input {
                label: "helios-loadgen".into(),
                report: report.clone(),
            },
            Input {
                label: "refclient".into(),
                report: reference,
            },
        ];
        let path = dir.path().join("s.svg");
        spectrum(&path, "spectrum", &inputs).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("refclient"));
        assert!(
            svg.contains("helios-loadgen (uncorrected)")
                && !svg.contains("refclient (uncorrected)")
        );
        let path = dir.path().join("t.svg");
        series(&path, "series", &inputs[..1]).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("p99 (ms)"));
        assert!(
            series(&path, "series", &inputs[1..]).is_err(),
            "the reference has no series"
        );
    }
}
