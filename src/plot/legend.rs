//! The legend (one entry per series, reference line and theory curve, right of the plot area)
//! and the marker shapes.
use super::style::{text_at, text_width, Fonts, Ink};
use super::Figure;
use std::fmt::Write;

const LEGEND_SAMPLE: f64 = 26.0;
const MARKER_RADIUS: f64 = 4.0;

/// What an entry's sample shows: a series, a reference line or a theory curve (by index).
#[derive(Clone, Copy)]
enum Sample {
    Series(usize),
    Reference(usize),
    Curve(usize),
}

/// The legend's entries, their labels wrapped at ", ", and its width.
pub struct Legend {
    entries: Vec<(Sample, Vec<String>)>,
    pub width: f64,
    font: f64,
}

impl Legend {
    /// The legend of `fig`, at most `max_width` wide.
    pub fn new(fig: &Figure, fonts: &Fonts, max_width: f64) -> Self {
        let font = fonts.legend;
        let max_text = max_width - LEGEND_SAMPLE - 8.0;
        let series = fig.series.iter().enumerate().map(|(i, s)| (Sample::Series(i), &s.label));
        let references =
            fig.reference.iter().enumerate().map(|(i, r)| (Sample::Reference(i), &r.label));
        let curves = fig.curves.iter().enumerate().map(|(i, c)| (Sample::Curve(i), &c.label));
        let entries: Vec<(Sample, Vec<String>)> = series
            .chain(references)
            .chain(curves)
            .map(|(sample, label)| (sample, wrap(label, ", ", max_text, font)))
            .collect();
        let text = entries
            .iter()
            .flat_map(|(_, lines)| lines)
            .map(|l| text_width(l, font))
            .fold(0.0, f64::max);
        Legend { entries, width: LEGEND_SAMPLE + 8.0 + text.min(max_text), font }
    }

    /// Draws the legend with its top left corner at (`left`, `top`).
    pub fn draw(&self, svg: &mut String, fig: &Figure, left: f64, top: f64) {
        let _ = writeln!(svg, r#"<g class="legend">"#);
        let line = self.font * 1.25;
        let mut y = top + line / 2.0;
        for (sample, lines) in &self.entries {
            let (x0, x1) = (left, left + LEGEND_SAMPLE);
            let ink = match *sample {
                Sample::Series(i) => Ink::series(&fig.series[i]),
                Sample::Reference(i) => Ink::reference(i),
                Sample::Curve(i) => Ink::curve(&fig.curves[i]),
            };
            let _ = writeln!(
                svg,
                r#"<line x1="{x0:.2}" x2="{x1:.2}" y1="{y:.2}" y2="{y:.2}" {}/>"#,
                ink.stroke()
            );
            if let Sample::Series(i) = *sample {
                let s = &fig.series[i];
                Marker::nth(s.marker).draw(svg, (x0 + x1) / 2.0, y, ink.colour);
            }
            for text in lines {
                text_at(svg, x1 + 8.0, y + 0.35 * self.font, self.font, "start", text);
                y += line;
            }
            y += 5.0;
        }
        let _ = writeln!(svg, "</g>");
    }
}

/// Splits `label` at `separator` into lines of at most `max_width` pixels where possible.
pub fn wrap(label: &str, separator: &str, max_width: f64, font: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let glue = separator.trim_end();
    for part in label.split(separator) {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line}{separator}{part}"), font) <= max_width => {
                line.push_str(separator);
                line.push_str(part);
            }
            Some(line) => {
                line.push_str(glue);
                lines.push(part.to_string());
            }
            None => lines.push(part.to_string()),
        }
    }
    lines
}

/// Marker shapes, all about `MARKER_RADIUS` in size.
#[derive(Clone, Copy)]
pub enum Marker {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
    Hexagon,
}

impl Marker {
    /// The `i`th shape, cycling.
    pub fn nth(i: usize) -> Marker {
        const ALL: [Marker; 6] = [
            Marker::Circle,
            Marker::Square,
            Marker::TriangleUp,
            Marker::Diamond,
            Marker::TriangleDown,
            Marker::Hexagon,
        ];
        ALL[i % ALL.len()]
    }

    /// Appends the marker centred at (`x`, `y`).
    pub fn draw(self, svg: &mut String, x: f64, y: f64, colour: &str) {
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
