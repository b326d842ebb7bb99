//! Heat maps of small matrices (paper Figure 2E–G): the student's overlaps Q, its overlaps R with
//! the teacher, and a DPP's joint inclusion probabilities. Drawn by hand as SVG like the line
//! plots, one square cell per entry with its value written in it, unit indices on both axes and a
//! colour bar; PNG and PDF come from the SVG (see [`super::write_svg`]).
//!
//! Colours: [`Scale::Diverging`] (blue–white–red, symmetric about 0, for overlaps that can be
//! negative) or [`Scale::Sequential`] (white to dark blue from 0 up, for probabilities).
use super::axis::Axis;
use super::legend::wrap;
use super::style::{text_at, text_width, Fonts, FONT};
use super::Canvas;
use std::fmt::Write;

/// How values map to colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// −m … 0 … m, m the largest |value|: blue, white, red.
    Diverging,
    /// 0 … max value: white to dark blue.
    Sequential,
}

/// A matrix to draw, row-major `rows` × `cols`; row i is drawn i-th from the top.
#[derive(Clone, Debug, PartialEq)]
pub struct Heatmap {
    pub title: String,
    /// Under the plot: what the values are.
    pub caption: String,
    pub values: Vec<f64>,
    pub rows: usize,
    pub cols: usize,
    /// Axis titles: the row index (left) and the column index (bottom).
    pub row_label: String,
    pub col_label: String,
    /// The colour bar's title.
    pub value_label: String,
    pub scale: Scale,
}

/// The colour bar's ends: (low, high).
fn limits(h: &Heatmap) -> (f64, f64) {
    let finite = h.values.iter().copied().filter(|v| v.is_finite());
    match h.scale {
        Scale::Diverging => {
            let m = finite.map(f64::abs).fold(0.0, f64::max);
            let m = if m > 0.0 { m } else { 1.0 };
            (-m, m)
        }
        Scale::Sequential => {
            let m = finite.fold(0.0, f64::max);
            (0.0, if m > 0.0 { m } else { 1.0 })
        }
    }
}

/// The colour of `v` as (r, g, b), 0–255.
fn colour(scale: Scale, lo: f64, hi: f64, v: f64) -> (u8, u8, u8) {
    let mix = |a: (f64, f64, f64), b: (f64, f64, f64), t: f64| {
        let t = t.clamp(0.0, 1.0);
        let c = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
        (c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
    };
    const WHITE: (f64, f64, f64) = (255.0, 255.0, 255.0);
    const BLUE: (f64, f64, f64) = (33.0, 102.0, 172.0);
    const RED: (f64, f64, f64) = (178.0, 24.0, 43.0);
    const NAVY: (f64, f64, f64) = (8.0, 48.0, 107.0);
    if !v.is_finite() {
        return (160, 160, 160);
    }
    match scale {
        Scale::Diverging if v < 0.0 => mix(WHITE, BLUE, v / lo),
        Scale::Diverging => mix(WHITE, RED, v / hi),
        Scale::Sequential => mix(WHITE, NAVY, (v - lo) / (hi - lo)),
    }
}

/// A cell's text: three significant decimals for small matrices, two for larger ones.
fn cell_text(v: f64, cols: usize) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let text = if cols <= 8 { format!("{v:.3}") } else { format!("{v:.2}") };
    text.replace('-', "−")
}

/// Draws `h` as a standalone SVG document of `canvas.width` × `canvas.height` units.
pub fn render_svg(h: &Heatmap, canvas: &Canvas) -> String {
    let fonts = Fonts::new(canvas.font_size);
    let (w, ht) = (canvas.width, canvas.height);
    let title = wrap(&h.title, ", ", w - 24.0, fonts.title);
    let caption = wrap(&h.caption, " ", w - 24.0, fonts.caption);
    let top = 14.0 + title.len() as f64 * fonts.title * 1.25 + 8.0;
    let bottom = ht - 12.0 - caption.len() as f64 * fonts.caption * 1.3 - fonts.label * 2.6;
    let left = 16.0 + fonts.label * 1.4 + text_width(&format!("{}", h.rows), fonts.tick) + 8.0;
    let bar_room = 24.0 + 14.0 + text_width("−0.000", fonts.tick) + fonts.label * 1.6;
    let side = ((w - left - bar_room - 12.0) / h.cols.max(1) as f64)
        .min((bottom - top) / h.rows.max(1) as f64)
        .max(1.0);
    let (gw, gh) = (side * h.cols as f64, side * h.rows as f64);
    let left = left.max((w - gw - bar_room) / 2.0);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" viewBox="0 0 {w} {ht}" font-family="{FONT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, line) in title.iter().enumerate() {
        text_at(
            &mut svg,
            w / 2.0,
            14.0 + (i as f64 + 1.0) * fonts.title * 1.1,
            fonts.title,
            "middle",
            line,
        );
    }
    let (lo, hi) = limits(h);
    cells(&mut svg, h, (left, top), side, (lo, hi), &fonts);
    let _ = writeln!(
        svg,
        r#"<rect x="{left:.2}" y="{top:.2}" width="{gw:.2}" height="{gh:.2}" stroke="black" stroke-width="1" fill="none"/>"#
    );
    indices(&mut svg, h, (left, top), side, &fonts);
    let mid_y = top + gh / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{x:.2}" y="{mid_y:.2}" font-size="{s}" text-anchor="middle" transform="rotate(-90 {x:.2} {mid_y:.2})">{t}</text>"#,
        x = 16.0 + fonts.label * 0.8,
        s = fonts.label,
        t = super::svg::escape(&h.row_label)
    );
    let label_y = top + gh + fonts.tick * 1.4 + fonts.label * 1.3;
    text_at(&mut svg, left + gw / 2.0, label_y, fonts.label, "middle", &h.col_label);
    colour_bar(&mut svg, h, (left + gw + 24.0, top), gh, (lo, hi), &fonts);
    for (i, line) in caption.iter().enumerate() {
        let y = label_y + 8.0 + (i as f64 + 1.0) * fonts.caption * 1.3;
        text_at(&mut svg, w / 2.0, y, fonts.caption, "middle", line);
    }
    svg.push_str("</svg>\n");
    svg
}

/// The coloured cells, each with its value in black or white (whichever reads on its colour).
fn cells(svg: &mut String, h: &Heatmap, at: (f64, f64), side: f64, lim: (f64, f64), f: &Fonts) {
    let size = (side * 0.28).min(f.tick);
    for r in 0..h.rows {
        for c in 0..h.cols {
            let v = h.values[r * h.cols + c];
            let (red, green, blue) = colour(h.scale, lim.0, lim.1, v);
            let (x, y) = (at.0 + c as f64 * side, at.1 + r as f64 * side);
            let _ = writeln!(
                svg,
                r##"<rect class="cell" x="{x:.2}" y="{y:.2}" width="{side:.2}" height="{side:.2}" fill="#{red:02x}{green:02x}{blue:02x}"/>"##
            );
            let luminance = 0.299 * red as f64 + 0.587 * green as f64 + 0.114 * blue as f64;
            let ink = if luminance < 128.0 { "white" } else { "black" };
            let _ = writeln!(
                svg,
                r#"<text x="{:.2}" y="{:.2}" font-size="{size:.2}" text-anchor="middle" fill="{ink}">{}</text>"#,
                x + side / 2.0,
                y + side / 2.0 + size * 0.35,
                cell_text(v, h.cols)
            );
        }
    }
}

/// Row indices to the left, column indices below, from 0.
fn indices(svg: &mut String, h: &Heatmap, at: (f64, f64), side: f64, f: &Fonts) {
    for r in 0..h.rows {
        let y = at.1 + (r as f64 + 0.5) * side + f.tick * 0.35;
        text_at(svg, at.0 - 6.0, y, f.tick, "end", &r.to_string());
    }
    let below = at.1 + h.rows as f64 * side + f.tick * 1.2;
    for c in 0..h.cols {
        text_at(svg, at.0 + (c as f64 + 0.5) * side, below, f.tick, "middle", &c.to_string());
    }
}

/// A vertical colour bar of height `height` with 1-2-5 ticks and its title, rotated.
fn colour_bar(
    svg: &mut String,
    h: &Heatmap,
    at: (f64, f64),
    height: f64,
    lim: (f64, f64),
    f: &Fonts,
) {
    const STEPS: usize = 64;
    let (x, top) = at;
    let step = height / STEPS as f64;
    for s in 0..STEPS {
        let v = lim.1 - (s as f64 + 0.5) / STEPS as f64 * (lim.1 - lim.0);
        let (r, g, b) = colour(h.scale, lim.0, lim.1, v);
        let y = top + s as f64 * step;
        let _ = writeln!(
            svg,
            r##"<rect x="{x:.2}" y="{y:.2}" width="14" height="{:.2}" fill="#{r:02x}{g:02x}{b:02x}"/>"##,
            step + 0.3
        );
    }
    let _ = writeln!(
        svg,
        r#"<rect class="colour-bar" x="{x:.2}" y="{top:.2}" width="14" height="{height:.2}" stroke="black" stroke-width="0.8" fill="none"/>"#
    );
    let axis = Axis::new(vec![lim.0, lim.1], false, 6);
    for (v, label) in axis.ticks.iter().filter(|(v, _)| *v >= lim.0 - 1e-12 && *v <= lim.1 + 1e-12)
    {
        let y = top + (lim.1 - v) / (lim.1 - lim.0) * height;
        let _ = writeln!(
            svg,
            r#"<line x1="{:.2}" y1="{y:.2}" x2="{:.2}" y2="{y:.2}" stroke="black"/>"#,
            x + 14.0,
            x + 18.0
        );
        text_at(svg, x + 21.0, y + f.tick * 0.35, f.tick, "start", label);
    }
    let tx = x + 24.0 + text_width("−0.000", f.tick) + f.label * 0.6;
    let ty = top + height / 2.0;
    let _ = writeln!(
        svg,
        r#"<text x="{tx:.2}" y="{ty:.2}" font-size="{}" text-anchor="middle" transform="rotate(-90 {tx:.2} {ty:.2})">{}</text>"#,
        f.label,
        super::svg::escape(&h.value_label)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Heatmap {
        Heatmap {
            title: "overlaps Q".into(),
            caption: "Q_ik = w_i·w_k/N".into(),
            values: vec![1.0, -0.5, 0.25, -0.5, 1.2, 0.0, 0.25, 0.0, 0.9],
            rows: 3,
            cols: 3,
            row_label: "student unit i".into(),
            col_label: "student unit k".into(),
            value_label: "Q_ik".into(),
            scale: Scale::Diverging,
        }
    }

    #[test]
    fn colours_follow_the_scale() {
        assert_eq!(colour(Scale::Diverging, -2.0, 2.0, 0.0), (255, 255, 255));
        assert_eq!(colour(Scale::Diverging, -2.0, 2.0, 2.0), (178, 24, 43));
        assert_eq!(colour(Scale::Diverging, -2.0, 2.0, -2.0), (33, 102, 172));
        assert_eq!(colour(Scale::Sequential, 0.0, 0.5, 0.0), (255, 255, 255));
        assert_eq!(colour(Scale::Sequential, 0.0, 0.5, 0.5), (8, 48, 107));
        assert_eq!(limits(&example()), (-1.2, 1.2));
    }

    #[test]
    fn every_cell_is_drawn_with_its_value_and_the_svg_parses() {
        let svg =
            render_svg(&example(), &Canvas { width: 520.0, height: 460.0, ..Canvas::default() });
        assert_eq!(svg.matches(r#"class="cell""#).count(), 9);
        for text in [">1.000<", ">−0.500<", ">1.200<", ">student unit i<", ">Q_ik<", ">overlaps Q<"]
        {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.contains(r#"class="colour-bar""#));
        let tree = resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default());
        assert!(tree.is_ok(), "the SVG does not parse: {:?}", tree.err());
    }
}
