//! SVG rendering of a [`Figure`], drawn by hand: a framed plot area with 1-2-5 ticks and a faint
//! grid, one Okabe–Ito colour and marker shape per series (a line through the means, error bars
//! with caps), dashed reference lines, and the legend to the right of the plot area so it never
//! covers the data. Text widths are estimated from DejaVu Sans metrics.
use super::Figure;
use std::fmt::Write;

/// Canvas size in pixels (PNG output doubles it).
pub const WIDTH: f64 = 720.0;
pub const HEIGHT: f64 = 450.0;

const FONT: &str = "DejaVu Sans, sans-serif";
/// Okabe & Ito's colour-blind-safe palette, most contrasting first (yellow, faint on white, last).
const COLOURS: [&str; 8] =
    ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
const MARKERS: [Marker; 6] = [
    Marker::Circle,
    Marker::Square,
    Marker::TriangleUp,
    Marker::Diamond,
    Marker::TriangleDown,
    Marker::Hexagon,
];
/// Dash patterns of successive reference lines.
const DASHES: [&str; 4] = ["6 4", "2 3", "9 3 2 3", "14 4"];
const REFERENCE_COLOUR: &str = "#444444";
const TICK_FONT: f64 = 12.0;
const LABEL_FONT: f64 = 13.0;
const TITLE_FONT: f64 = 15.0;
const LEGEND_FONT: f64 = 12.0;
const LEGEND_LINE: f64 = 15.0;
const LEGEND_SAMPLE: f64 = 26.0;
const LEGEND_MAX_WIDTH: f64 = 230.0;
const MARKER_RADIUS: f64 = 4.0;

/// Draws `fig` as a standalone SVG document of [`WIDTH`] × [`HEIGHT`] pixels.
pub fn render_svg(fig: &Figure) -> String {
    let legend = Legend::new(fig);
    let log_y = fig.log_y && fig.series.iter().flat_map(|s| &s.points).any(|p| p.mean > 0.0);

    let xs = fig.series.iter().flat_map(|s| &s.points).map(|p| p.x);
    let ys = fig
        .series
        .iter()
        .flat_map(|s| &s.points)
        .flat_map(|p| [p.mean - p.err, p.mean, p.mean + p.err])
        .chain(fig.reference.iter().map(|r| r.y));
    let x_axis = Axis::new(xs.collect(), false, 9);
    let y_axis = Axis::new(ys.filter(|&y| !log_y || y > 0.0).collect(), log_y, 8);

    // Plot area: room on the left for the y tick labels and the y label, on the right for the
    // legend, at the top for the title.
    let y_tick_width =
        y_axis.ticks.iter().map(|(_, t)| text_width(t, TICK_FONT)).fold(0.0, f64::max);
    let left = 12.0 + LABEL_FONT + 12.0 + y_tick_width + 8.0;
    let top = if fig.title.is_empty() { 16.0 } else { 20.0 + TITLE_FONT + 10.0 };
    let right = WIDTH - 12.0 - legend.width - 18.0;
    let bottom = HEIGHT - (8.0 + TICK_FONT + 10.0 + LABEL_FONT + 12.0);
    let area = Area { left, top, right, bottom };
    let px = |x: f64| area.left + x_axis.fraction(x) * (area.right - area.left);
    let py = |y: f64| area.bottom - y_axis.fraction(y) * (area.bottom - area.top);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);

    // Grid, frame and ticks.
    let mut grid = String::new();
    let mut ticks = String::new();
    for (x, text) in &x_axis.ticks {
        let x = px(*x);
        let _ = write!(grid, "M{x:.2},{:.2}V{:.2}", area.top, area.bottom);
        let _ = write!(ticks, "M{x:.2},{:.2}v5", area.bottom);
        let y = area.bottom + 8.0 + TICK_FONT;
        text_at(&mut svg, x, y, TICK_FONT, "middle", text);
    }
    for (y, text) in &y_axis.ticks {
        let y = py(*y);
        let _ = write!(grid, "M{:.2},{y:.2}H{:.2}", area.left, area.right);
        let _ = write!(ticks, "M{:.2},{y:.2}h-5", area.left);
        text_at(&mut svg, area.left - 8.0, y + 0.35 * TICK_FONT, TICK_FONT, "end", text);
    }
    let _ = writeln!(svg, r##"<path d="{grid}" stroke="#e8e8e8" stroke-width="1" fill="none"/>"##);
    let _ = writeln!(svg, r##"<path d="{ticks}" stroke="#333333" stroke-width="1" fill="none"/>"##);
    let _ = writeln!(
        svg,
        r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" stroke="#333333" stroke-width="1"/>"##,
        area.left,
        area.top,
        area.right - area.left,
        area.bottom - area.top
    );

    // Labels and title.
    let centre_x = (area.left + area.right) / 2.0;
    text_at(&mut svg, centre_x, HEIGHT - 12.0, LABEL_FONT, "middle", &fig.x_label);
    let _ = writeln!(
        svg,
        r#"<text transform="translate({:.2},{:.2}) rotate(-90)" font-size="{LABEL_FONT}" text-anchor="middle">{}</text>"#,
        12.0 + LABEL_FONT,
        (area.top + area.bottom) / 2.0,
        escape(&fig.y_label)
    );
    if !fig.title.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text x="{centre_x:.2}" y="{:.2}" font-size="{TITLE_FONT}" font-weight="bold" text-anchor="middle">{}</text>"#,
            20.0 + TITLE_FONT * 0.8,
            escape(&fig.title)
        );
    }

    // Reference lines, under the data.
    for (i, r) in fig.reference.iter().enumerate() {
        if !log_y || r.y > 0.0 {
            let _ = writeln!(
                svg,
                r#"<line x1="{:.2}" x2="{:.2}" y1="{y:.2}" y2="{y:.2}" stroke="{REFERENCE_COLOUR}" stroke-width="1.3" stroke-dasharray="{}"/>"#,
                area.left,
                area.right,
                DASHES[i % DASHES.len()],
                y = py(r.y)
            );
        }
    }

    // Series: error bars, line, markers. Series sharing an x are nudged apart by a few pixels so
    // their error bars stay distinguishable.
    let nudge = nudge(fig, &px);
    for (i, series) in fig.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let offset = (i as f64 - (fig.series.len() as f64 - 1.0) / 2.0) * nudge;
        let visible: Vec<_> = series.points.iter().filter(|p| !log_y || p.mean > 0.0).collect();
        let _ = writeln!(svg, r#"<g class="series">"#);
        let mut bars = String::new();
        for p in &visible {
            if p.err > 0.0 {
                let x = px(p.x) + offset;
                let high = py(p.mean + p.err);
                let (low, capped) = if log_y && p.mean - p.err <= 0.0 {
                    (area.bottom, false)
                } else {
                    (py(p.mean - p.err), true)
                };
                let _ = write!(bars, "M{x:.2},{low:.2}V{high:.2}M{:.2},{high:.2}h6", x - 3.0);
                if capped {
                    let _ = write!(bars, "M{:.2},{low:.2}h6", x - 3.0);
                }
            }
        }
        if !bars.is_empty() {
            let _ = writeln!(
                svg,
                r#"<path d="{bars}" stroke="{colour}" stroke-width="1.2" fill="none"/>"#
            );
        }
        let points: Vec<String> =
            visible.iter().map(|p| format!("{:.2},{:.2}", px(p.x) + offset, py(p.mean))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" stroke="{colour}" stroke-width="1.8" stroke-linejoin="round" fill="none"/>"#,
            points.join(" ")
        );
        for p in &visible {
            MARKERS[i % MARKERS.len()].draw(&mut svg, px(p.x) + offset, py(p.mean), colour);
        }
        let _ = writeln!(svg, "</g>");
    }

    legend.draw(&mut svg, area.right + 18.0, area.top + 4.0);
    svg.push_str("</svg>\n");
    svg
}

/// The plot area in canvas pixels.
struct Area {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

/// The horizontal offset in pixels between neighbouring series at the same x.
fn nudge(fig: &Figure, px: &impl Fn(f64) -> f64) -> f64 {
    let mut xs: Vec<f64> = fig.series.iter().flat_map(|s| &s.points).map(|p| px(p.x)).collect();
    xs.sort_by(f64::total_cmp);
    let gap = xs.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0.5).fold(f64::INFINITY, f64::min);
    (0.3 * gap / fig.series.len() as f64).min(4.0)
}

/// One axis: its limits, whether it is logarithmic, and its ticks (value, label).
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<(f64, String)>,
}

impl Axis {
    /// Limits span `values` plus a 4 % margin; ticks are the nicest 1-2-5 values inside, at most
    /// `max_ticks` of them. A log axis uses 1-2-5 ticks per decade, or whole decades when wide.
    fn new(values: Vec<f64>, log: bool, max_ticks: usize) -> Self {
        let map = |v: f64| if log { v.log10() } else { v };
        let (mut lo, mut hi) = values
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .map(map)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if hi - lo < 1e-12 * hi.abs().max(1.0) {
            let pad = if log { 0.1 } else { 0.1 * hi.abs().max(1e-9) };
            (lo, hi) = (lo - pad, hi + pad);
        }
        let margin = 0.04 * (hi - lo);
        let (lo, hi) = (lo - margin, hi + margin);
        let ticks =
            if log { log_ticks(lo, hi, max_ticks) } else { linear_ticks(lo, hi, max_ticks) };
        Axis { lo, hi, log, ticks }
    }

    /// Where `v` falls between the limits, 0 to 1.
    fn fraction(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// The nicest 1-2-5 step giving at most `max_ticks` ticks within `[lo, hi]`, and those ticks.
fn linear_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let mut exponent = ((hi - lo) / max_ticks as f64).log10().floor() as i32 - 1;
    loop {
        for mantissa in [1.0, 2.0, 5.0] {
            let step = mantissa * 10f64.powi(exponent);
            let (first, last) = ((lo / step).ceil() as i64, (hi / step).floor() as i64);
            if last - first < max_ticks as i64 {
                let decimals = (-exponent).max(0) as usize;
                return (first..=last)
                    .map(|k| {
                        let v = k as f64 * step;
                        (v, number(v, decimals, exponent))
                    })
                    .collect();
            }
        }
        exponent += 1;
    }
}

/// Ticks of a log axis whose limits are `lo`, `hi` in log10 units.
fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let decades = (lo.floor() as i32)..=(hi.ceil() as i32);
    let inside = |v: &f64| (lo..=hi).contains(&v.log10());
    let within = |mantissas: &[f64]| -> Vec<(f64, String)> {
        decades
            .clone()
            .flat_map(|e| mantissas.iter().map(move |m| (m * 10f64.powi(e), e)))
            .filter(|(v, _)| inside(v))
            .map(|(v, e)| (v, number(v, (-e).max(0) as usize, e)))
            .collect()
    };
    let coarse = within(&[1.0, 2.0, 5.0]);
    if (4..=max_ticks).contains(&coarse.len()) {
        return coarse;
    }
    if coarse.len() < 4 {
        // About a decade: denser mantissas, or ordinary 1-2-5 ticks placed logarithmically.
        let dense = within(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]);
        if (3..=max_ticks).contains(&dense.len()) {
            return dense;
        }
        if coarse.len() == 3 {
            return coarse;
        }
        let ticks = linear_ticks(10f64.powf(lo), 10f64.powf(hi), max_ticks.min(5));
        return ticks.into_iter().filter(|(v, _)| *v > 0.0 && inside(v)).collect();
    }
    let whole: Vec<i32> = decades.filter(|&e| inside(&10f64.powi(e))).collect();
    let every = whole.len().div_ceil(max_ticks).max(1) as i32;
    whole
        .into_iter()
        .filter(|e| e.rem_euclid(every) == 0)
        .map(|e| (10f64.powi(e), e))
        .map(|(v, e)| {
            (v, if (-3..=4).contains(&e) { number(v, (-e).max(0) as usize, e) } else { power(e) })
        })
        .collect()
}

/// A tick label: fixed-point with `decimals` digits, or `m×10ⁿ` when the step's `exponent` is
/// very small or large. Negative numbers use a true minus sign.
fn number(v: f64, decimals: usize, exponent: i32) -> String {
    let text = if !(-4..6).contains(&exponent) {
        if v == 0.0 {
            return "0".into();
        }
        let e = v.abs().log10().floor() as i32;
        let m = v / 10f64.powi(e);
        let m = format!("{m:.2}");
        let m = m.trim_end_matches('0').trim_end_matches('.');
        if m == "1" {
            power(e)
        } else {
            format!("{m}×{}", power(e))
        }
    } else {
        format!("{v:.decimals$}")
    };
    text.replace('-', "\u{2212}")
}

/// `10ⁿ` with a superscript exponent.
fn power(e: i32) -> String {
    let digits: String = e
        .to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            d => ["⁰", "¹", "²", "³", "⁴", "⁵", "⁶", "⁷", "⁸", "⁹"][d as usize - '0' as usize]
                .chars()
                .next()
                .unwrap_or(d),
        })
        .collect();
    format!("10{digits}")
}

/// The legend: one entry per series and per reference line, labels wrapped at ", ".
struct Legend {
    entries: Vec<(Sample, Vec<String>)>,
    width: f64,
}

enum Sample {
    Series(usize),
    Reference(usize),
}

impl Legend {
    fn new(fig: &Figure) -> Self {
        let max_text = LEGEND_MAX_WIDTH - LEGEND_SAMPLE - 8.0;
        let series = fig.series.iter().enumerate().map(|(i, s)| (Sample::Series(i), &s.label));
        let references =
            fig.reference.iter().enumerate().map(|(i, r)| (Sample::Reference(i), &r.label));
        let entries: Vec<(Sample, Vec<String>)> = series
            .chain(references)
            .map(|(sample, label)| (sample, wrap(label, max_text)))
            .collect();
        let text = entries
            .iter()
            .flat_map(|(_, lines)| lines)
            .map(|l| text_width(l, LEGEND_FONT))
            .fold(0.0, f64::max);
        Legend { entries, width: LEGEND_SAMPLE + 8.0 + text.min(max_text) }
    }

    fn draw(&self, svg: &mut String, left: f64, top: f64) {
        let _ = writeln!(svg, r#"<g class="legend">"#);
        let mut y = top + LEGEND_LINE / 2.0;
        for (sample, lines) in &self.entries {
            let (x0, x1) = (left, left + LEGEND_SAMPLE);
            match *sample {
                Sample::Series(i) => {
                    let colour = COLOURS[i % COLOURS.len()];
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{x0:.2}" x2="{x1:.2}" y1="{y:.2}" y2="{y:.2}" stroke="{colour}" stroke-width="1.8"/>"#
                    );
                    MARKERS[i % MARKERS.len()].draw(svg, (x0 + x1) / 2.0, y, colour);
                }
                Sample::Reference(i) => {
                    let _ = writeln!(
                        svg,
                        r#"<line x1="{x0:.2}" x2="{x1:.2}" y1="{y:.2}" y2="{y:.2}" stroke="{REFERENCE_COLOUR}" stroke-width="1.3" stroke-dasharray="{}"/>"#,
                        DASHES[i % DASHES.len()]
                    );
                }
            }
            for line in lines {
                text_at(svg, x1 + 8.0, y + 0.35 * LEGEND_FONT, LEGEND_FONT, "start", line);
                y += LEGEND_LINE;
            }
            y += 5.0;
        }
        let _ = writeln!(svg, "</g>");
    }
}

/// Splits `label` at ", " into lines of at most `max_width` pixels where possible.
fn wrap(label: &str, max_width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in label.split(", ") {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line}, {part}"), LEGEND_FONT) <= max_width => {
                line.push_str(", ");
                line.push_str(part);
            }
            Some(line) => {
                line.push(',');
                lines.push(part.to_string());
            }
            None => lines.push(part.to_string()),
        }
    }
    lines
}

/// Marker shapes, all about `MARKER_RADIUS` in size.
#[derive(Clone, Copy)]
enum Marker {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
    Hexagon,
}

impl Marker {
    fn draw(self, svg: &mut String, x: f64, y: f64, colour: &str) {
        let r = MARKER_RADIUS;
        let style = format!(r#"fill="{colour}" stroke="white" stroke-width="0.8""#);
        let polygon = |corners: &[(f64, f64)]| {
            let points: Vec<String> = corners
                .iter()
                .map(|(dx, dy)| format!("{:.2},{:.2}", x + dx * r, y + dy * r))
                .collect();
            format!(r#"<polygon points="{}" {style}/>"#, points.join(" "))
        };
        let element = match self {
            Marker::Circle => format!(r#"<circle cx="{x:.2}" cy="{y:.2}" r="{r}" {style}/>"#),
            Marker::Square => polygon(&[(-0.9, -0.9), (0.9, -0.9), (0.9, 0.9), (-0.9, 0.9)]),
            Marker::TriangleUp => polygon(&[(0.0, -1.25), (1.15, 0.85), (-1.15, 0.85)]),
            Marker::Diamond => polygon(&[(0.0, -1.25), (1.1, 0.0), (0.0, 1.25), (-1.1, 0.0)]),
            Marker::TriangleDown => polygon(&[(0.0, 1.25), (1.15, -0.85), (-1.15, -0.85)]),
            Marker::Hexagon => {
                let corners: Vec<(f64, f64)> = (0..6)
                    .map(|k| {
                        let a = std::f64::consts::FRAC_PI_3 * k as f64;
                        (1.1 * a.cos(), 1.1 * a.sin())
                    })
                    .collect();
                polygon(&corners)
            }
        };
        svg.push_str(&element);
        svg.push('\n');
    }
}

/// Appends a `<text>` element.
fn text_at(svg: &mut String, x: f64, y: f64, size: f64, anchor: &str, text: &str) {
    let _ = writeln!(
        svg,
        r#"<text x="{x:.2}" y="{y:.2}" font-size="{size}" text-anchor="{anchor}">{}</text>"#,
        escape(text)
    );
}

/// Advance widths of DejaVu Sans for ASCII ' '..='~', in thousandths of an em.
#[rustfmt::skip]
const ASCII_ADVANCE: [u16; 95] = [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337,
    636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 531,
    1000, 709, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748, 787,
    603, 787, 695, 635, 595, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838, 500,
    500, 613, 635, 550, 635, 615, 344, 635, 634, 278, 278, 579, 278, 974, 634, 612,
    635, 635, 395, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];

/// Rendered width of `text` in DejaVu Sans at `size` pixels (other characters: about 0.6 em).
fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            ' '..='~' => f64::from(ASCII_ADVANCE[c as usize - ' ' as usize]) / 1000.0,
            '\u{300}'..='\u{36f}' => 0.0, // combining marks
            _ => 0.6,
        })
        .sum();
    em * size
}

/// Escapes text for XML character data and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::{Point, Reference, Series};
    use resvg::usvg::roxmltree;

    fn figure() -> Figure {
        let series = |label: &str, scale: f64| Series {
            label: label.into(),
            points: (1..=5)
                .map(|k| {
                    let x = 20.0 * k as f64 - 10.0;
                    Point { x, mean: scale * (1.0 - x / 100.0), err: 0.05 * scale, n: 10 }
                })
                .collect(),
        };
        Figure {
            title: "fig <2a> & more".into(),
            x_label: "% of parameters kept".into(),
            y_label: "generalisation error ε̂ (½·MSE)".into(),
            series: vec![
                series("random_node, reweight=false", 0.8),
                series("dpp_node, reweight=true, noise_std=0.25", 0.4),
                series("a <&> b", 0.6),
            ],
            reference: vec![Reference { label: "unpruned".into(), y: 0.05 }],
            log_y: false,
            dropped: 0,
        }
    }

    fn texts(doc: &roxmltree::Document) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(String::from)
            .collect()
    }

    #[test]
    fn the_svg_is_well_formed_with_a_line_and_legend_entry_per_series() {
        let svg = render_svg(&figure());
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!((root.attribute("width"), root.attribute("height")), (Some("720"), Some("450")));
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count(), 3);
        let polyline = doc.descendants().find(|n| n.has_tag_name("polyline")).unwrap();
        assert_eq!(polyline.attribute("points").unwrap().split(' ').count(), 5);
        let texts = texts(&doc);
        for label in ["random_node, reweight=false", "a <&> b", "unpruned", "fig <2a> & more"] {
            assert!(texts.iter().any(|t| t == label), "{label} missing from {texts:?}");
        }
        assert!(texts.iter().any(|t| t == "noise_std=0.25"), "long labels wrap: {texts:?}");
        assert!(svg.contains("a &lt;&amp;&gt; b") && !svg.contains("a <&> b"));
        assert_eq!(
            doc.descendants().filter(|n| n.attribute("stroke-dasharray").is_some()).count(),
            2
        );
        // Three distinct series colours.
        let mut colours: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .filter_map(|n| n.attribute("stroke"))
            .collect();
        colours.dedup();
        assert_eq!(colours.len(), 3);
    }

    #[test]
    fn the_legend_sits_right_of_the_plot_area() {
        let svg = render_svg(&figure());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let frame = doc
            .descendants()
            .find(|n| n.has_tag_name("rect") && n.attribute("stroke").is_some())
            .unwrap();
        let num = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
        let plot_right = num(frame, "x") + num(frame, "width");
        let legend = doc.descendants().find(|n| n.attribute("class") == Some("legend")).unwrap();
        for text in legend.descendants().filter(|n| n.has_tag_name("text")) {
            let x = num(text, "x");
            assert!(
                x > plot_right && x + text_width(text.text().unwrap(), LEGEND_FONT) <= WIDTH,
                "{x}"
            );
        }
    }

    #[test]
    fn ticks_are_nice() {
        let values =
            |ticks: Vec<(f64, String)>| ticks.into_iter().map(|(_, t)| t).collect::<Vec<_>>();
        assert_eq!(
            values(linear_ticks(6.0, 94.0, 9)),
            ["10", "20", "30", "40", "50", "60", "70", "80", "90"]
        );
        assert_eq!(values(linear_ticks(-0.03, 0.83, 8)), ["0.0", "0.2", "0.4", "0.6", "0.8"]);
        assert_eq!(
            values(linear_ticks(-1.2, 1.2, 8)),
            ["\u{2212}1.0", "\u{2212}0.5", "0.0", "0.5", "1.0"]
        );
        assert_eq!(values(linear_ticks(0.0, 3e-5, 4)), ["0", "10⁻⁵", "2×10⁻⁵", "3×10⁻⁵"]);
        // Log: 1-2-5 within two decades, whole decades beyond.
        assert_eq!(values(log_ticks(-1.9, -0.1, 8)), ["0.02", "0.05", "0.1", "0.2", "0.5"]);
        assert_eq!(
            values(log_ticks(0.035f64.log10(), 0.35f64.log10(), 8)),
            ["0.04", "0.05", "0.06", "0.08", "0.1", "0.2", "0.3"]
        );
        assert_eq!(
            values(log_ticks(0.021f64.log10(), 0.024f64.log10(), 8)),
            ["0.021", "0.022", "0.023", "0.024"]
        );
        assert_eq!(
            values(log_ticks(-6.5, 0.2, 8)),
            ["10⁻⁶", "10⁻⁵", "10⁻⁴", "0.001", "0.01", "0.1", "1"]
        );
    }

    #[test]
    fn a_log_axis_keeps_positive_points_and_clips_error_bars() {
        let mut fig = figure();
        fig.log_y = true;
        fig.series[0].points[0].err = 10.0; // reaches below zero
        fig.series[1].points[4].mean = 0.0; // cannot be drawn
        let svg = render_svg(&fig);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let counts: Vec<usize> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .map(|n| n.attribute("points").unwrap().split(' ').count())
            .collect();
        assert_eq!(counts, [5, 4, 5]);
    }
}
