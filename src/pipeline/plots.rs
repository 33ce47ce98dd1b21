//! PNG plots of a run (plotters): loss curves of pretraining and SFT, rater accuracy on gold with
//! the super-rater cut, ground-truth scores per criterion for each policy, and reward and KL over
//! PPO steps once stage 7 writes them. Text needs a TrueType font: `RLHF_FONT`, else a system
//! DejaVu/Liberation/Arial; without one the plots are skipped and the report says so.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use serde_json::Value;

use super::context::RunContext;
use super::error::{PipelineError, Result};
use super::eval::PolicyEval;
use super::raters::RatersReport;

/// The plots drawn, as (title, path relative to the run directory), and why any were skipped.
#[derive(Debug, Clone, Default)]
pub struct Plots {
    /// Drawn plots.
    pub files: Vec<(String, String)>,
    /// Why plots were skipped, if they were.
    pub skipped: Option<String>,
}

const FONT_CANDIDATES: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers a TrueType font for plot text once; the error says which files were tried.
fn font() -> std::result::Result<(), String> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("RLHF_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_CANDIDATES.iter().map(PathBuf::from))
            .collect();
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // The font lives as long as the process: plotters keeps a 'static reference.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font found (tried {}); set RLHF_FONT to a .ttf file",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
    .clone()
}

fn plot_err(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Plot {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Draws into a temporary PNG beside `path`, then renames it into place.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(
        &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    ) -> std::result::Result<(), String>,
) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}.png", std::process::id()));
    {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
        draw(&root).map_err(|e| plot_err(path, e))?;
        root.present().map_err(|e| plot_err(path, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| PipelineError::io(path, e))
}

/// `(step, value)` of metric `name` in a stage's metrics file.
fn series(ctx: &RunContext, stage: &str, name: &str) -> Vec<(f64, f64)> {
    let path = ctx.dir.path(&format!("metrics/{stage}.jsonl"));
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v.get("step")?.as_f64()?, v.get(name)?.as_f64()?)))
        .collect()
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if lo.is_finite() && hi.is_finite() && hi > lo {
        (lo, hi)
    } else if lo.is_finite() {
        (lo - 0.5, lo + 0.5)
    } else {
        (0.0, 1.0)
    }
}

/// A named line: (label, (x, y) points, colour).
type Line<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);
/// A named bar series: (label, one value per group, colour).
type Bars = (String, Vec<f64>, RGBColor);

/// One line chart of named series (`(label, points, color)`) in `area`.
fn line_chart(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    lines: &[Line<'_>],
) -> std::result::Result<(), String> {
    let (x0, x1) = range(lines.iter().flat_map(|l| l.1.iter().map(|p| p.0)));
    let (y0, y1) = range(lines.iter().flat_map(|l| l.1.iter().map(|p| p.1)));
    let pad = (y1 - y0) * 0.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .x_desc("step")
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    for (label, points, color) in lines {
        let color = *color;
        if points.len() > 1 && !label.starts_with("val") {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        } else {
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?
                .label(*label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Bars of `groups` (x labels), one bar per series inside each group, with optional horizontal
/// reference lines `(label, y, color)`.
fn bar_chart(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[Bars],
    colors_per_bar: Option<&[RGBColor]>,
    references: &[(String, f64, RGBColor)],
) -> std::result::Result<(), String> {
    let n = groups.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(60)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..n, 0.0..1.05)
        .map_err(|e| e.to_string())?;
    let labels = groups.to_vec();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&move |x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.26 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc(y_label)
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, (label, values, color)) in series.iter().enumerate() {
        let color = *color;
        let bars = values.iter().enumerate().map(|(g, &v)| {
            let x0 = g as f64 + 0.1 + s as f64 * width;
            let fill = colors_per_bar
                .and_then(|c| c.get(g).copied())
                .unwrap_or(color);
            Rectangle::new(
                [(x0, 0.0), (x0 + width * 0.92, v.clamp(0.0, 1.05))],
                fill.filled(),
            )
        });
        chart
            .draw_series(bars)
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    for (label, y, color) in references {
        let color = *color;
        let y = *y;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, y), (n, y)],
                8,
                5,
                color.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(label.as_str())
            .legend(move |(x, yy)| {
                PathElement::new(vec![(x, yy), (x + 18, yy)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws every plot the run has data for.
pub fn draw_all(ctx: &RunContext, evals: &[PolicyEval], raters: &RatersReport) -> Result<Plots> {
    if let Err(why) = font() {
        tracing::warn!("plots skipped: {why}");
        return Ok(Plots {
            files: Vec::new(),
            skipped: Some(why),
        });
    }
    let mut files = Vec::new();
    let dir = ctx.dir.path("plots");

    let path = dir.join("loss_curves.png");
    draw_png(&path, (1200, 450), |root| {
        let (left, right) = root.split_horizontally(600);
        for (area, stage, title) in [
            (&left, "pretrain", "Pretraining loss"),
            (&right, "sft", "SFT loss (response tokens)"),
        ] {
            line_chart(
                area,
                title,
                "cross-entropy (nats)",
                &[
                    ("train", series(ctx, stage, "train/loss"), PALETTE[0]),
                    ("validation", series(ctx, stage, "val/loss"), PALETTE[1]),
                ],
            )?;
        }
        Ok(())
    })?;
    files.push((
        "Loss curves".to_string(),
        "plots/loss_curves.png".to_string(),
    ));

    let path = dir.join("rater_accuracy.png");
    let names: Vec<String> = raters.raters.iter().map(|r| r.rater.clone()).collect();
    let accuracy: Vec<f64> = raters
        .raters
        .iter()
        .map(|r| r.gold_accuracy.unwrap_or(0.0))
        .collect();
    let colors: Vec<RGBColor> = raters
        .raters
        .iter()
        .map(|r| if r.kept { PALETTE[2] } else { PALETTE[3] })
        .collect();
    draw_png(&path, (1100, 480), |root| {
        bar_chart(
            root,
            "Rater accuracy on gold preferences (green: super raters)",
            "accuracy",
            &names,
            &[("gold accuracy".to_string(), accuracy.clone(), PALETTE[2])],
            Some(&colors),
            &[
                (
                    format!("super-rater cut {:.2}", raters.min_gold_accuracy),
                    raters.min_gold_accuracy,
                    BLACK,
                ),
                (
                    format!("chance {:.2}", raters.chance),
                    raters.chance,
                    RGBColor(128, 128, 128),
                ),
            ],
        )
    })?;
    files.push((
        "Rater accuracy vs gold".to_string(),
        "plots/rater_accuracy.png".to_string(),
    ));

    let path = dir.join("criteria.png");
    let mut groups: Vec<String> = evals
        .first()
        .map(|e| e.criteria.keys().cloned().collect())
        .unwrap_or_default();
    groups.push("total".to_string());
    let per_policy: Vec<Bars> = evals
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut v: Vec<f64> = groups
                .iter()
                .take(groups.len() - 1)
                .map(|c| e.criteria.get(c).copied().unwrap_or(0.0))
                .collect();
            v.push(e.total);
            (e.policy.clone(), v, PALETTE[i % PALETTE.len()])
        })
        .collect();
    draw_png(&path, (900, 480), |root| {
        bar_chart(
            root,
            "Ground-truth score per criterion, by policy",
            "mean score",
            &groups,
            &per_policy,
            None,
            &[],
        )
    })?;
    files.push((
        "Per-criterion scores by stage".to_string(),
        "plots/criteria.png".to_string(),
    ));

    let reward = series(ctx, "ppo", "objective/scores");
    let kl = series(ctx, "ppo", "objective/kl");
    if !reward.is_empty() || !kl.is_empty() {
        let path = dir.join("ppo.png");
        draw_png(&path, (1200, 450), |root| {
            let (left, right) = root.split_horizontally(600);
            line_chart(
                &left,
                "PPO: reward-model score",
                "score",
                &[("reward", reward.clone(), PALETTE[0])],
            )?;
            line_chart(
                &right,
                "PPO: KL to SFT",
                "nats",
                &[("kl", kl.clone(), PALETTE[1])],
            )
        })?;
        files.push((
            "Reward and KL over PPO steps".to_string(),
            "plots/ppo.png".to_string(),
        ));
    }
    Ok(Plots {
        files,
        skipped: None,
    })
}
