//! PNG output: the figure's SVG rasterised by `resvg` at the canvas' dpi (SVG units are 1/96
//! inch), with text in the system's fonts (DejaVu Sans preferred; on Debian it comes with the
//! `fonts-dejavu-core` package).
use super::{svg, Canvas, Figure};
use anyhow::{bail, Context, Result};
use resvg::{tiny_skia, usvg};
use std::sync::{Arc, OnceLock};

/// Renders `fig` as PNG bytes of (width × dpi / 96) × (height × dpi / 96) pixels.
pub fn render_png(fig: &Figure, canvas: &Canvas) -> Result<Vec<u8>> {
    svg_to_png(&svg::render_svg(fig, canvas), canvas)
}

/// Rasterises an SVG document of `canvas.width` × `canvas.height` units at `canvas.dpi`.
pub fn svg_to_png(svg: &str, canvas: &Canvas) -> Result<Vec<u8>> {
    let fonts = fonts();
    if fonts.is_empty() {
        bail!("cannot draw text in a PNG: no fonts found (install fonts-dejavu-core)");
    }
    let options = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::clone(fonts),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &options)
        .context("rendering the figure: the generated SVG did not parse")?;
    let scale = (canvas.dpi / 96.0) as f32;
    let size = tree.size().to_int_size().scale_by(scale).with_context(|| {
        format!(
            "a {}×{} figure at {} dpi is too large for a PNG",
            canvas.width, canvas.height, canvas.dpi
        )
    })?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .context("cannot allocate the PNG's pixels")?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    pixmap.encode_png().context("encoding the PNG")
}

/// The system's fonts, loaded once per process, with DejaVu Sans as the generic sans-serif.
pub fn fonts() -> &'static Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        let has_dejavu = |db: &usvg::fontdb::Database| {
            db.faces().any(|f| f.families.iter().any(|(name, _)| name == "DejaVu Sans"))
        };
        if !has_dejavu(&db) {
            db.load_fonts_dir("/usr/share/fonts/truetype/dejavu");
        }
        if has_dejavu(&db) {
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
    fn the_png_has_the_signature_the_size_and_some_ink() {
        let bytes = render_png(&figure(), &Canvas::default()).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let pixmap = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (1440, 900));
        let background = pixmap.pixel(0, 0).unwrap();
        assert_eq!((background.red(), background.green(), background.blue()), (255, 255, 255));
        let ink = pixmap.pixels().iter().filter(|&&p| p != background).count();
        assert!(ink > 10_000, "only {ink} non-background pixels");
        // Coloured pixels: the series are drawn, not just the black frame and text.
        let coloured = pixmap.pixels().iter().filter(|p| p.red().abs_diff(p.blue()) > 60).count();
        assert!(coloured > 1_000, "only {coloured} coloured pixels");
        // Text is drawn: the leftmost 35 (SVG) columns hold only the rotated y label.
        let label_ink = (0..900)
            .flat_map(|y| (0..70).map(move |x| (x, y)))
            .filter(|&(x, y)| pixmap.pixel(x, y) != Some(background))
            .count();
        assert!(label_ink > 100, "no y label drawn ({label_ink} pixels)");
    }

    #[test]
    fn the_dpi_sets_the_pixel_size() {
        let canvas = Canvas { width: 300.0, height: 200.0, dpi: 144.0, ..Canvas::default() };
        let bytes = render_png(&figure(), &canvas).unwrap();
        let pixmap = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (450, 300));
    }
}
