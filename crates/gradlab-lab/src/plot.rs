//! PNG figures with `plotters`, text set in the embedded DejaVu Sans (no system fonts needed).

use crate::error::{LabError, Result, file_err};
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn ensure_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from `ys` at x = 0, 1, 2, ….
    pub fn indexed(label: impl Into<String>, ys: &[f64]) -> Self {
        Self {
            label: label.into(),
            points: ys.iter().enumerate().map(|(i, y)| (i as f64, *y)).collect(),
        }
    }
}

fn plot_err(shown: &Path, e: impl std::fmt::Display) -> LabError {
    file_err(shown, format!("cannot draw the figure: {e}"))
}

/// Draw with `draw` into a temporary file beside `path` (with the same extension, which picks the
/// format), then rename it over `path`: a failure part-way never leaves a half-written figure.
fn write_figure(path: &Path, draw: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("png");
    let stem = path
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "figure".into());
    let tmp = gradlab_train::output::parent_dir(path)
        .join(format!(".{stem}.tmp-{}.{ext}", std::process::id()));
    let result = draw(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path)
            .map_err(|e| file_err(path, gradlab_train::output::io_reason(&e)))
    });
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

// Draws into `path`; errors name `shown`, the figure the user asked for.
fn draw_line_chart(
    path: &Path,
    shown: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hlines: &[(String, f64)],
) -> Result<()> {
    ensure_font();
    let finite = |v: f64| v.is_finite();
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|v| finite(*v));
    let ys = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(hlines.iter().map(|h| h.1))
        .filter(|v| finite(*v));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !(x0.is_finite() && y0.is_finite()) {
        return Err(LabError::Invalid(format!(
            "nothing finite to plot in '{title}'"
        )));
    }
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(shown, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1.max(x0 + 1e-9), (y0 - pad)..(y1 + pad))
        .map_err(|e| plot_err(shown, e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(shown, e))?;
    for (i, s) in series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                s.points
                    .iter()
                    .copied()
                    .filter(|p| finite(p.0) && finite(p.1)),
                color.stroke_width(2),
            ))
            .map_err(|e| plot_err(shown, e))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    for (label, y) in hlines {
        let style = BLACK.mix(0.5).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(vec![(x0, *y), (x1, *y)], 6, 4, style))
            .map_err(|e| plot_err(shown, e))?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| plot_err(shown, e))?;
    root.present().map_err(|e| plot_err(shown, e))
}

// Draws into `path`; errors name `shown`, the figure the user asked for.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
fn draw_scatter_panels(
    path: &Path,
    shown: &Path,
    panels: &[(String, Vec<(f64, f64)>)],
    columns: usize,
    range: (f64, f64),
) -> Result<()> {
    ensure_font();
    if panels.is_empty() || columns == 0 || !(range.1 > range.0) {
        return Err(LabError::Invalid("nothing to scatter".into()));
    }
    let rows = panels.len().div_ceil(columns);
    let root =
        BitMapBackend::new(path, (300 * columns as u32, 300 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(shown, e))?;
    for (area, (title, points)) in root.split_evenly((rows, columns)).iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 15))
            .margin(6)
            .build_cartesian_2d(range.0..range.1, range.0..range.1)
            .map_err(|e| plot_err(shown, e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style(("sans-serif", 10))
            .draw()
            .map_err(|e| plot_err(shown, e))?;
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.0.is_finite() && p.1.is_finite())
                    .map(|p| Circle::new(*p, 1, PALETTE[0].mix(0.5).filled())),
            )
            .map_err(|e| plot_err(shown, e))?;
    }
    root.present().map_err(|e| plot_err(shown, e))
}

// Draws into `path`; errors name `shown`, the figure the user asked for.
fn draw_image_grid(
    path: &Path,
    shown: &Path,
    images: &[Vec<f64>],
    h: usize,
    w: usize,
    columns: usize,
    scale: u32,
) -> Result<()> {
    if images.is_empty()
        || columns == 0
        || h == 0
        || w == 0
        || images.iter().any(|i| i.len() != h * w)
    {
        return Err(LabError::Invalid(
            "image grid needs images of h × w pixels".into(),
        ));
    }
    let rows = images.len().div_ceil(columns);
    let cell = |n: usize| (n as u32) * scale + 2;
    let root = BitMapBackend::new(path, (columns as u32 * cell(w), rows as u32 * cell(h)))
        .into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(shown, e))?;
    for (k, img) in images.iter().enumerate() {
        let (r, c) = (k / columns, k % columns);
        let (x0, y0) = (c as i32 * cell(w) as i32 + 1, r as i32 * cell(h) as i32 + 1);
        for i in 0..h {
            for j in 0..w {
                let v = (img[i * w + j].clamp(0.0, 1.0) * 255.0).round() as u8;
                let (x, y) = (
                    x0 + (j as u32 * scale) as i32,
                    y0 + (i as u32 * scale) as i32,
                );
                root.draw(&Rectangle::new(
                    [(x, y), (x + scale as i32, y + scale as i32)],
                    RGBColor(255 - v, 255 - v, 255 - v).filled(),
                ))
                .map_err(|e| plot_err(shown, e))?;
            }
        }
    }
    root.present().map_err(|e| plot_err(shown, e))
}

/// A line chart of `series` written as a 900×560 PNG; `hlines` are dashed reference levels.
pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    hlines: &[(String, f64)],
) -> Result<()> {
    write_figure(path, |tmp| {
        draw_line_chart(tmp, path, title, x_label, y_label, series, hlines)
    })
}

/// Side-by-side scatter plots of 2D point sets (one panel each, `columns` per row, shared axes
/// from `range`), written as a PNG.
pub fn scatter_panels(
    path: &Path,
    panels: &[(String, Vec<(f64, f64)>)],
    columns: usize,
    range: (f64, f64),
) -> Result<()> {
    write_figure(path, |tmp| {
        draw_scatter_panels(tmp, path, panels, columns, range)
    })
}

/// A grid of grayscale images (pixel values in [0, 1], row-major `h × w` each, `columns` per
/// row), written as a PNG with `scale` screen pixels per image pixel.
pub fn image_grid(
    path: &Path,
    images: &[Vec<f64>],
    h: usize,
    w: usize,
    columns: usize,
    scale: u32,
) -> Result<()> {
    write_figure(path, |tmp| {
        draw_image_grid(tmp, path, images, h, w, columns, scale)
    })
}
