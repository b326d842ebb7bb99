//! PNG output: the figure's SVG rasterised by `resvg` at twice its size, with text in the system's
//! fonts (DejaVu Sans preferred; on Debian it comes with the `fonts-dejavu-core` package).
use super::{svg, Figure};
use anyhow::{bail, Context, Result};
use resvg::{tiny_skia, usvg};
use std::sync::{Arc, OnceLock};

/// Pixels per SVG unit.
pub const SCALE: f32 = 2.0;

/// Renders `fig` as PNG bytes of (2·[`svg::WIDTH`]) × (2·[`svg::HEIGHT`]) pixels.
pub fn render_png(fig: &Figure) -> Result<Vec<u8>> {
    let fonts = fonts();
    if fonts.is_empty() {
        bail!("cannot draw text in a PNG: no fonts found (install fonts-dejavu-core)");
    }
    let options = usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: Arc::clone(fonts),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(&svg::render_svg(fig), &options)
        .context("rendering the figure: the generated SVG did not parse")?;
    let size = tree.size().to_int_size().scale_by(SCALE).context("figure too large for a PNG")?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .context("cannot allocate the PNG's pixels")?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(SCALE, SCALE), &mut pixmap.as_mut());
    pixmap.encode_png().context("encoding the PNG")
}

/// The system's fonts, loaded once per process, with DejaVu Sans as the generic sans-serif.
fn fonts() -> &'static Arc<usvg::fontdb::Database> {
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
    use crate::plot::tests::{scratch, EXAMPLE};
    use crate::plot::{aggregate, write, Query};
    use std::path::PathBuf;

    #[test]
    fn the_png_has_the_signature_the_size_and_some_ink() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE);
        let query = Query {
            by: vec!["method".into(), "reweight".into(), "settings".into()],
            x_scale: 100.0,
            ..Query::new("keep_fraction", "ge_empirical")
        };
        let fig = aggregate(&[path], &query).unwrap();
        let out = scratch("png").join("fig.png");
        write(&fig, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
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
}
