//! How figures look, shared by the plot area and the legend: the font and its sizes, the colours
//! and dash patterns of series, reference lines and theory curves, and text placement with widths
//! estimated from DejaVu Sans metrics.
use super::{Curve, Series};
use std::fmt::Write;

pub(super) const FONT: &str = "DejaVu Sans, sans-serif";
/// Okabe & Ito's colour-blind-safe palette, most contrasting first (yellow, faint on white, last).
const COLOURS: [&str; 8] =
    ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];
/// Dash patterns of series (by their `dash` number; the first is solid).
const SERIES_DASHES: [&str; 5] = ["", "7 4", "2 3", "9 3 2 3", "12 3 3 3"];
/// Dash patterns of successive reference lines.
const DASHES: [&str; 4] = ["6 4", "2 3", "9 3 2 3", "14 4"];
/// Dash patterns of theory curves.
const CURVE_DASHES: [&str; 3] = ["10 3", "4 2", "10 2 2 2"];
const REFERENCE_COLOUR: &str = "#444444";
const CURVE_COLOUR: &str = "#222222";
/// The dotted pattern of `ge_theory` lines.
const THEORY_DASH: &str = "1.5 2.5";

/// Font sizes, all proportional to the canvas' base size.
pub struct Fonts {
    pub tick: f64,
    pub label: f64,
    pub title: f64,
    pub legend: f64,
    pub caption: f64,
}

impl Fonts {
    pub(super) fn new(base: f64) -> Self {
        let k = base / 12.0;
        Fonts { tick: base, label: 13.0 * k, title: 15.0 * k, legend: base, caption: 11.0 * k }
    }
}

/// How a line is stroked.
pub struct Ink {
    pub colour: &'static str,
    pub(super) width: f64,
    pub(super) dash: &'static str,
}

impl Ink {
    pub fn series(s: &Series) -> Ink {
        let dash = SERIES_DASHES[s.dash % SERIES_DASHES.len()];
        Ink { colour: COLOURS[s.colour % COLOURS.len()], width: 1.8, dash }
    }

    pub fn reference(i: usize) -> Ink {
        Ink { colour: REFERENCE_COLOUR, width: 1.3, dash: DASHES[i % DASHES.len()] }
    }

    pub fn curve(c: &Curve) -> Ink {
        Ink { colour: CURVE_COLOUR, width: 1.5, dash: CURVE_DASHES[c.dash % CURVE_DASHES.len()] }
    }

    pub(super) fn theory(s: &Series) -> Ink {
        Ink { colour: COLOURS[s.colour % COLOURS.len()], width: 1.4, dash: THEORY_DASH }
    }

    /// The stroke attributes.
    pub fn stroke(&self) -> String {
        let dash = match self.dash {
            "" => String::new(),
            d => format!(r#" stroke-dasharray="{d}""#),
        };
        format!(r#"stroke="{}" stroke-width="{}"{dash} fill="none""#, self.colour, self.width)
    }
}

/// Appends a `<text>` element.
pub fn text_at(svg: &mut String, x: f64, y: f64, size: f64, anchor: &str, text: &str) {
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
pub fn text_width(text: &str, size: f64) -> f64 {
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
