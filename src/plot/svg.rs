//! SVG rendering of a [`Figure`], drawn by hand: a framed plot area with 1-2-5 ticks and a faint
//! grid, series coloured by one column and dashed by another (Okabe–Ito colours, a marker shape
//! per series, a line through the means, error bars with caps; series of more than
//! [`MAX_MARKERS`] points, such as an ODE's curve, as a line only), dotted `ge_theory` lines, dark
//! theory curves, dashed reference lines, the legend to the right of the plot area so it never
//! covers the data, the title above and the caption below. Text widths are estimated from
//! DejaVu Sans metrics.
use super::axis::Axis;
use super::legend::{wrap, Legend, Marker};
pub use super::style::escape;
use super::style::{text_at, text_width, Fonts, Ink, FONT};
use super::{Canvas, Figure, Series};
use std::fmt::Write;

/// Draws `fig` as a standalone SVG document of `canvas.width` × `canvas.height` units.
pub fn render_svg(fig: &Figure, canvas: &Canvas) -> String {
    let plot = Plot::new(fig, canvas);
    let (w, h) = (canvas.width, canvas.height);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    plot.frame(&mut svg);
    plot.texts(&mut svg, fig);
    plot.references(&mut svg, fig);
    plot.curves(&mut svg, fig);
    let nudge = if fig.jitter { plot.nudge(fig) } else { 0.0 };
    for (i, series) in fig.series.iter().enumerate() {
        let offset = (i as f64 - (fig.series.len() as f64 - 1.0) / 2.0) * nudge;
        plot.series(&mut svg, series, offset);
    }
    plot.legend.draw(&mut svg, fig, plot.area.right + 18.0, plot.area.top + 4.0);
    svg.push_str("</svg>\n");
    svg
}

/// Series with more points than this are drawn without markers and error bars.
const MAX_MARKERS: usize = 60;

/// The plot area in canvas units.
struct Area {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

/// A laid-out figure: axes, plot area, fonts, wrapped title and caption, legend.
struct Plot {
    area: Area,
    x_axis: Axis,
    y_axis: Axis,
    log_y: bool,
    log_x: bool,
    fonts: Fonts,
    title: Vec<String>,
    caption: Vec<String>,
    legend: Legend,
    canvas: Canvas,
}

impl Plot {
    fn new(fig: &Figure, canvas: &Canvas) -> Plot {
        let fonts = Fonts::new(canvas.font_size);
        let legend = Legend::new(fig, &fonts, (19.0 * fonts.legend).min(0.4 * canvas.width));
        let log_y = fig.log_y && fig.series.iter().flat_map(|s| &s.points).any(|p| p.mean > 0.0);
        let log_x = fig.log_x && fig.series.iter().flat_map(|s| &s.points).any(|p| p.x > 0.0);
        let points = || fig.series.iter().flat_map(|s| &s.points);
        let curves = || fig.curves.iter().flat_map(|c| &c.points);
        let xs = points().map(|p| p.x).chain(curves().map(|p| p.0));
        let ys = points()
            .flat_map(|p| [p.mean - p.err, p.mean, p.mean + p.err])
            .chain(points().filter_map(|p| p.theory))
            .chain(curves().map(|p| p.1))
            .chain(fig.reference.iter().map(|r| r.y));
        let x_axis = Axis::new(xs.filter(|&x| !log_x || x > 0.0).collect(), log_x, 9);
        let y_axis = Axis::new(ys.filter(|&y| !log_y || y > 0.0).collect(), log_y, 8);
        let text_room = canvas.width - 24.0;
        let title = if fig.title.is_empty() {
            Vec::new()
        } else {
            wrap(&fig.title, ", ", text_room, fonts.title)
        };
        let caption = if fig.caption.is_empty() {
            Vec::new()
        } else {
            wrap(&fig.caption, "; ", text_room, fonts.caption)
        };
        // Room on the left for the y tick labels and the y label, on the right for the legend,
        // at the top for the title, at the bottom for the ticks, x label and caption.
        let y_tick_width =
            y_axis.ticks.iter().map(|(_, t)| text_width(t, fonts.tick)).fold(0.0, f64::max);
        let top = 16.0 + title.len() as f64 * 1.25 * fonts.title + 4.0;
        let below = 8.0 + fonts.tick + 10.0 + fonts.label + 12.0;
        let area = Area {
            left: 12.0 + fonts.label + 12.0 + y_tick_width + 8.0,
            top,
            right: canvas.width - 12.0 - legend.width - 18.0,
            bottom: canvas.height - below - caption.len() as f64 * 1.3 * fonts.caption,
        };
        Plot { area, x_axis, y_axis, log_y, log_x, fonts, title, caption, legend, canvas: *canvas }
    }

    fn px(&self, x: f64) -> f64 {
        self.area.left + self.x_axis.fraction(x) * (self.area.right - self.area.left)
    }

    fn py(&self, y: f64) -> f64 {
        self.area.bottom - self.y_axis.fraction(y) * (self.area.bottom - self.area.top)
    }

    /// Grid, ticks with their labels, and the frame.
    fn frame(&self, svg: &mut String) {
        let (area, tick) = (&self.area, self.fonts.tick);
        let mut grid = String::new();
        let mut ticks = String::new();
        for (x, text) in &self.x_axis.ticks {
            let x = self.px(*x);
            let _ = write!(grid, "M{x:.2},{:.2}V{:.2}", area.top, area.bottom);
            let _ = write!(ticks, "M{x:.2},{:.2}v5", area.bottom);
            text_at(svg, x, area.bottom + 8.0 + tick, tick, "middle", text);
        }
        for (y, text) in &self.y_axis.ticks {
            let y = self.py(*y);
            let _ = write!(grid, "M{:.2},{y:.2}H{:.2}", area.left, area.right);
            let _ = write!(ticks, "M{:.2},{y:.2}h-5", area.left);
            text_at(svg, area.left - 8.0, y + 0.35 * tick, tick, "end", text);
        }
        let _ =
            writeln!(svg, r##"<path d="{grid}" stroke="#e8e8e8" stroke-width="1" fill="none"/>"##);
        let _ =
            writeln!(svg, r##"<path d="{ticks}" stroke="#333333" stroke-width="1" fill="none"/>"##);
        let _ = writeln!(
            svg,
            r##"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="none" stroke="#333333" stroke-width="1"/>"##,
            area.left,
            area.top,
            area.right - area.left,
            area.bottom - area.top
        );
    }

    /// Axis labels, title and caption.
    fn texts(&self, svg: &mut String, fig: &Figure) {
        let (area, fonts) = (&self.area, &self.fonts);
        let centre_x = (area.left + area.right) / 2.0;
        let x_label_y = area.bottom + 8.0 + fonts.tick + 10.0 + fonts.label;
        text_at(svg, centre_x, x_label_y, fonts.label, "middle", &fig.x_label);
        let _ = writeln!(
            svg,
            r#"<text transform="translate({:.2},{:.2}) rotate(-90)" font-size="{}" text-anchor="middle">{}</text>"#,
            12.0 + fonts.label,
            (area.top + area.bottom) / 2.0,
            fonts.label,
            escape(&fig.y_label)
        );
        let centre = self.canvas.width / 2.0;
        for (k, line) in self.title.iter().enumerate() {
            let y = 16.0 + fonts.title * (0.8 + 1.25 * k as f64);
            let _ = writeln!(
                svg,
                r#"<text class="title" x="{centre:.2}" y="{y:.2}" font-size="{}" font-weight="bold" text-anchor="middle">{}</text>"#,
                fonts.title,
                escape(line)
            );
        }
        for (k, line) in self.caption.iter().enumerate() {
            let y = x_label_y + 6.0 + fonts.caption * 1.3 * (k + 1) as f64;
            let _ = writeln!(
                svg,
                r##"<text class="caption" x="{centre:.2}" y="{y:.2}" font-size="{}" fill="#333333" text-anchor="middle">{}</text>"##,
                fonts.caption,
                escape(line)
            );
        }
    }

    /// Reference lines, under the data.
    fn references(&self, svg: &mut String, fig: &Figure) {
        for (i, r) in fig.reference.iter().enumerate() {
            if !self.log_y || r.y > 0.0 {
                let _ = writeln!(
                    svg,
                    r#"<line class="reference" x1="{:.2}" x2="{:.2}" y1="{y:.2}" y2="{y:.2}" {}/>"#,
                    self.area.left,
                    self.area.right,
                    Ink::reference(i).stroke(),
                    y = self.py(r.y)
                );
            }
        }
    }

    /// Theory curves, under the data.
    fn curves(&self, svg: &mut String, fig: &Figure) {
        for curve in &fig.curves {
            let points: Vec<(f64, f64)> =
                curve.points.iter().copied().filter(|&(x, y)| self.shown(x, y)).collect();
            self.polyline(svg, "curve", &points, &Ink::curve(curve));
        }
    }

    /// Whether a point at (x, y) can be drawn on the axes (log axes need positive values).
    fn shown(&self, x: f64, y: f64) -> bool {
        (!self.log_y || y > 0.0) && (!self.log_x || x > 0.0)
    }

    /// A `<polyline>` through `points` (data coordinates).
    fn polyline(&self, svg: &mut String, class: &str, points: &[(f64, f64)], ink: &Ink) {
        let text: Vec<String> =
            points.iter().map(|&(x, y)| format!("{:.2},{:.2}", self.px(x), self.py(y))).collect();
        let _ = writeln!(
            svg,
            r#"<polyline class="{class}" points="{}" {} stroke-linejoin="round"/>"#,
            text.join(" "),
            ink.stroke()
        );
    }

    /// One series shifted sideways by `offset` units: error bars, its `ge_theory` line, its line
    /// and markers.
    fn series(&self, svg: &mut String, series: &Series, offset: f64) {
        let ink = Ink::series(series);
        let visible: Vec<_> = series.points.iter().filter(|p| self.shown(p.x, p.mean)).collect();
        let _ = writeln!(svg, r#"<g class="series">"#);
        // Dense series (an ODE's curve) are drawn as a line of means only.
        let dense = visible.len() > MAX_MARKERS;
        let mut bars = String::new();
        for p in visible.iter().filter(|p| p.err > 0.0 && !dense) {
            let x = self.px(p.x) + offset;
            let high = self.py(p.mean + p.err);
            let (low, capped) = if self.log_y && p.mean - p.err <= 0.0 {
                (self.area.bottom, false)
            } else {
                (self.py(p.mean - p.err), true)
            };
            let _ = write!(bars, "M{x:.2},{low:.2}V{high:.2}M{:.2},{high:.2}h6", x - 3.0);
            if capped {
                let _ = write!(bars, "M{:.2},{low:.2}h6", x - 3.0);
            }
        }
        if !bars.is_empty() {
            let colour = ink.colour;
            let _ = writeln!(
                svg,
                r#"<path d="{bars}" stroke="{colour}" stroke-width="1.2" fill="none"/>"#
            );
        }
        let theory: Vec<(f64, f64)> = visible
            .iter()
            .filter_map(|p| Some((p.x, p.theory.filter(|&t| !self.log_y || t > 0.0)?)))
            .collect();
        if !theory.is_empty() {
            self.polyline(svg, "theory", &theory, &Ink::theory(series));
        }
        let shift = offset / (self.area.right - self.area.left) * self.x_axis.span();
        let shifted = |x: f64| if self.log_x { x * 10f64.powf(shift) } else { x + shift };
        let line: Vec<(f64, f64)> = visible.iter().map(|p| (shifted(p.x), p.mean)).collect();
        self.polyline(svg, "mean", &line, &ink);
        let markers = if dense { &[] } else { visible.as_slice() };
        for p in markers {
            Marker::nth(series.marker).draw(
                svg,
                self.px(p.x) + offset,
                self.py(p.mean),
                ink.colour,
            );
        }
        let _ = writeln!(svg, "</g>");
    }

    /// The horizontal offset in units between neighbouring series at the same x.
    fn nudge(&self, fig: &Figure) -> f64 {
        let mut xs: Vec<f64> =
            fig.series.iter().flat_map(|s| &s.points).map(|p| self.px(p.x)).collect();
        xs.sort_by(f64::total_cmp);
        let gap =
            xs.windows(2).map(|w| w[1] - w[0]).filter(|&d| d > 0.5).fold(f64::INFINITY, f64::min);
        (0.3 * gap / fig.series.len() as f64).min(4.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plot::Curve;
    use crate::plot::{Point, Reference};
    use resvg::usvg::roxmltree;

    fn series(label: &str, scale: f64, colour: usize, dash: usize) -> Series {
        Series {
            label: label.into(),
            points: (1..=5)
                .map(|k| {
                    let x = 20.0 * k as f64 - 10.0;
                    let mean = scale * (1.0 - x / 100.0);
                    Point { x, mean, err: 0.05 * scale, n: 10, runs: 2, theory: None }
                })
                .collect(),
            colour,
            dash,
            marker: colour,
        }
    }

    pub(crate) fn figure() -> Figure {
        Figure {
            title: "fig <2a> & more".into(),
            x_label: "% of parameters kept".into(),
            y_label: "generalisation error ε̂ (½·MSE)".into(),
            caption: "points: mean over 2 seeds; bars: ±1 sd over seeds".into(),
            series: vec![
                series("random node", 0.8, 0, 0),
                series("importance node, reweighted, σ = 0.25, N = 500, η = 0.5", 0.4, 1, 1),
                series("a <&> b", 0.6, 1, 0),
            ],
            reference: vec![Reference { label: "unpruned".into(), y: 0.05 }],
            curves: Vec::new(),
            log_y: false,
            log_x: false,
            jitter: false,
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

    fn lines<'a>(doc: &'a roxmltree::Document, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
    }

    #[test]
    fn the_svg_is_well_formed_with_a_line_and_legend_entry_per_series() {
        let svg = render_svg(&figure(), &Canvas::default());
        let doc = roxmltree::Document::parse(&svg).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!((root.attribute("width"), root.attribute("height")), (Some("720"), Some("450")));
        let means = lines(&doc, "mean");
        assert_eq!(means.len(), 3);
        assert_eq!(means[0].attribute("points").unwrap().split(' ').count(), 5);
        let texts = texts(&doc);
        for label in ["random node", "a <&> b", "unpruned", "fig <2a> & more"] {
            assert!(texts.iter().any(|t| t == label), "{label} missing from {texts:?}");
        }
        assert!(texts.iter().any(|t| t.starts_with("importance node, reweighted,")), "{texts:?}");
        assert!(
            !texts.iter().any(|t| t.ends_with("η = 0.5") && t.starts_with("importance")),
            "long labels wrap: {texts:?}"
        );
        assert!(svg.contains("a &lt;&amp;&gt; b") && !svg.contains("a <&> b"));
        // Colour follows `colour`, dash follows `dash`: series 1 and 2 share a colour, series 1
        // alone is dashed.
        let stroke = |n: &roxmltree::Node| n.attribute("stroke").unwrap().to_string();
        assert_ne!(stroke(&means[0]), stroke(&means[1]));
        assert_eq!(stroke(&means[1]), stroke(&means[2]));
        let dashed: Vec<bool> =
            means.iter().map(|n| n.attribute("stroke-dasharray").is_some()).collect();
        assert_eq!(dashed, [false, true, false]);
        let caption = lines(&doc, "caption");
        assert_eq!(caption[0].text(), Some("points: mean over 2 seeds; bars: ±1 sd over seeds"));
    }

    #[test]
    fn theory_lines_and_curves_are_drawn_and_jitter_only_when_asked() {
        let mut fig = figure();
        let svg = render_svg(&fig, &Canvas::default());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        assert!(lines(&doc, "theory").is_empty() && lines(&doc, "curve").is_empty());
        let x_of = |doc: &roxmltree::Document, i: usize| {
            let points = lines(doc, "mean")[i].attribute("points").unwrap().to_string();
            points.split(',').next().unwrap().parse::<f64>().unwrap()
        };
        assert_eq!(x_of(&doc, 0), x_of(&doc, 1), "no sideways shift by default");

        fig.series[0].points[1].theory = Some(0.5);
        fig.series[0].points[2].theory = Some(0.4);
        fig.curves.push(Curve {
            label: "Theorem 1, eq. 5".into(),
            points: vec![(10.0, 0.9), (50.0, 0.2)],
            dash: 0,
        });
        fig.jitter = true;
        let svg = render_svg(&fig, &Canvas::default());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let theory = lines(&doc, "theory");
        assert_eq!(theory.len(), 1);
        assert_eq!(theory[0].attribute("points").unwrap().split(' ').count(), 2);
        assert_eq!(lines(&doc, "curve").len(), 1);
        assert!(texts(&doc).iter().any(|t| t == "Theorem 1, eq. 5"), "curves are in the legend");
        assert!(x_of(&doc, 0) < x_of(&doc, 1), "--jitter shifts series apart");
    }

    #[test]
    fn the_canvas_sets_size_and_fonts() {
        let canvas = Canvas { width: 400.0, height: 300.0, font_size: 9.0, dpi: 96.0 };
        let svg = render_svg(&figure(), &canvas);
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let root = doc.root_element();
        assert_eq!((root.attribute("width"), root.attribute("height")), (Some("400"), Some("300")));
        let legend = doc.descendants().find(|n| n.attribute("class") == Some("legend")).unwrap();
        let sizes: Vec<&str> = legend
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.attribute("font-size"))
            .collect();
        assert!(!sizes.is_empty() && sizes.iter().all(|s| *s == "9"), "{sizes:?}");
    }

    #[test]
    fn the_legend_sits_right_of_the_plot_area() {
        let svg = render_svg(&figure(), &Canvas::default());
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
            assert!(x > plot_right && x + text_width(text.text().unwrap(), 12.0) <= 720.0, "{x}");
        }
    }

    #[test]
    fn a_log_axis_keeps_positive_points_and_clips_error_bars() {
        let mut fig = figure();
        fig.log_y = true;
        fig.series[0].points[0].err = 10.0; // reaches below zero
        fig.series[1].points[4].mean = 0.0; // cannot be drawn
        let svg = render_svg(&fig, &Canvas::default());
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let counts: Vec<usize> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .map(|n| n.attribute("points").unwrap().split(' ').count())
            .collect();
        assert_eq!(counts, [5, 4, 5]);
    }
}
