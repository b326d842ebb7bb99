//! PDF output: the figure's SVG converted to vector PDF by `svg2pdf` (one SVG unit = one point),
//! with the text embedded as selectable text in DejaVu Sans.
//!
//! svg2pdf 0.13, the newest, is built on usvg 0.45 while PNG output uses resvg/usvg 0.49, so the
//! SVG is parsed a second time with svg2pdf's own usvg; its font database is filled from the
//! font files PNG output found (see [`super::png::fonts`]).
use super::{png, svg, Canvas, Figure};
use anyhow::{anyhow, bail, Context, Result};
use std::sync::{Arc, OnceLock};
use svg2pdf::usvg;

/// Renders `fig` as the bytes of a one-page PDF of `canvas.width` × `canvas.height` points.
pub fn render_pdf(fig: &Figure, canvas: &Canvas) -> Result<Vec<u8>> {
    svg_to_pdf(&svg::render_svg(fig, canvas))
}

/// Converts an SVG document to a one-page PDF, one SVG unit to the point.
pub fn svg_to_pdf(svg: &str) -> Result<Vec<u8>> {
    let fonts = fonts();
    if fonts.is_empty() {
        bail!("cannot draw text in a PDF: no fonts found (install fonts-dejavu-core)");
    }
    let options = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::clone(fonts),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)
        .context("rendering the figure: the generated SVG did not parse")?;
    let conversion = svg2pdf::ConversionOptions::default();
    svg2pdf::to_pdf(&tree, conversion, svg2pdf::PageOptions { dpi: 72.0 })
        .map_err(|e| anyhow!("converting the figure to PDF: {e}"))
}

/// DejaVu Sans (or, without it, every font PNG output found), loaded once per process into
/// svg2pdf's font database.
fn fonts() -> &'static Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS.get_or_init(|| {
        let system = png::fonts();
        let dejavu = |face: &&resvg::usvg::fontdb::FaceInfo| {
            face.families.iter().any(|(name, _)| name.starts_with("DejaVu Sans"))
        };
        let has_dejavu = system.faces().any(|f| dejavu(&f));
        let mut db = usvg::fontdb::Database::new();
        let mut loaded: Vec<std::path::PathBuf> = Vec::new();
        for face in system.faces().filter(|f| !has_dejavu || dejavu(f)) {
            let path = match &face.source {
                resvg::usvg::fontdb::Source::File(path) => path,
                resvg::usvg::fontdb::Source::SharedFile(path, _) => path,
                resvg::usvg::fontdb::Source::Binary(_) => continue,
            };
            if !loaded.contains(path) {
                if let Ok(bytes) = std::fs::read(path) {
                    db.load_font_data(bytes);
                }
                loaded.push(path.clone());
            }
        }
        if has_dejavu {
            db.set_sans_serif_family("DejaVu Sans");
        }
        Arc::new(db)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::svg::tests::figure;

    #[test]
    fn the_pdf_is_a_pdf_of_the_canvas_size_with_text() {
        let canvas = Canvas { width: 400.0, height: 250.0, ..Canvas::default() };
        let bytes = render_pdf(&figure(), &canvas).unwrap();
        assert!(bytes.starts_with(b"%PDF-"), "{:?}", &bytes[..8]);
        assert!(bytes.len() > 5_000, "only {} bytes", bytes.len());
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("/MediaBox [0 0 400 250]"), "the page is 400 × 250 pt");
        assert!(text.contains("/FontFile2") || text.contains("/FontFile3"), "fonts are embedded");
        assert!(text.trim_end().ends_with("%%EOF"));
    }
}
