//! Reader for the IDX format of the MNIST database (LeCun, Cortes & Burges,
//! <http://yann.lecun.com/exdb/mnist/>), also used by Fashion-MNIST.
//!
//! A file is a big-endian `u32` magic number, `0x00000801` (2049) for labels
//! (one dimension, n) or `0x00000803` (2051) for images (three dimensions,
//! n×rows×cols), then one big-endian `u32` per dimension, then the data as
//! unsigned bytes in row-major order. The magic's third byte is the data type
//! (`0x08`, unsigned byte) and its fourth the number of dimensions. Files may
//! be gzip-compressed; that is detected by the gzip magic bytes `1f 8b`,
//! whatever the file is called.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;

/// Magic number of an IDX labels file: unsigned bytes, one dimension.
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Magic number of an IDX images file: unsigned bytes, three dimensions.
pub const IMAGES_MAGIC: u32 = 0x0000_0803;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// DEFLATE cannot expand data by more than about 1032:1.
const MAX_DEFLATE_RATIO: usize = 1032;

/// A stack of greyscale images as stored in an IDX images file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
    /// `n * rows * cols` bytes, image after image, each row-major.
    pub pixels: Vec<u8>,
}

impl Images {
    /// Number of pixels in one image.
    pub fn dim(&self) -> usize {
        self.rows * self.cols
    }
}

/// Reads an IDX images file (magic 2051), raw or gzip-compressed.
pub fn read_images(path: &Path) -> Result<Images> {
    let bytes = read_maybe_gzip(path)?;
    let ([n, rows, cols], pixels) = parse::<3>(path, bytes, IMAGES_MAGIC, "images")?;
    check_image_size(path, rows, cols)?;
    Ok(Images { n, rows, cols, pixels })
}

/// Checks an IDX images file (magic 2051, raw or gzip-compressed) without keeping its pixels:
/// the header, and that the file holds exactly the bytes it declares. Returns `[n, rows, cols]`.
/// A raw file is not read beyond its header; a gzip file is inflated as a stream, which also
/// checks its CRC.
pub fn read_images_header(path: &Path) -> Result<[usize; 3]> {
    let (head, len) = read_head(path, 16)?;
    let dims = check_layout::<3>(path, &head, len, IMAGES_MAGIC, "images")?;
    check_image_size(path, dims[1], dims[2])?;
    Ok(dims)
}

fn check_image_size(path: &Path, rows: usize, cols: usize) -> Result<()> {
    if rows == 0 || cols == 0 {
        bail!("{} declares absurd IDX image size {rows}×{cols}", path.display());
    }
    Ok(())
}

/// Reads an IDX labels file (magic 2049), raw or gzip-compressed.
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let bytes = read_maybe_gzip(path)?;
    let ([_n], labels) = parse::<1>(path, bytes, LABELS_MAGIC, "labels")?;
    Ok(labels)
}

/// Reads the whole file, inflating it when it starts with the gzip magic.
fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut inflated = Vec::with_capacity(gzip_size_hint(&raw));
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut inflated)
        .with_context(|| format!("{} is a corrupt or truncated gzip file", path.display()))?;
    Ok(inflated)
}

/// The first `n` bytes of the (inflated) file, or fewer if it is shorter, and its whole
/// (inflated) length.
fn read_head(path: &Path, n: usize) -> Result<(Vec<u8>, usize)> {
    let cannot_read = || format!("cannot read {}", path.display());
    let mut file = fs::File::open(path).with_context(cannot_read)?;
    let mut head = Vec::with_capacity(n);
    (&mut file).take(n as u64).read_to_end(&mut head).with_context(cannot_read)?;
    if !head.starts_with(&GZIP_MAGIC) {
        let len = file.metadata().with_context(cannot_read)?.len();
        return Ok((head, usize::try_from(len).unwrap_or(usize::MAX)));
    }
    let corrupt = || format!("{} is a corrupt or truncated gzip file", path.display());
    file.seek(SeekFrom::Start(0)).with_context(cannot_read)?;
    let mut inflated = GzDecoder::new(io::BufReader::new(file));
    head.clear();
    (&mut inflated).take(n as u64).read_to_end(&mut head).with_context(corrupt)?;
    let rest = io::copy(&mut inflated, &mut io::sink()).with_context(corrupt)?;
    let len = head.len().saturating_add(usize::try_from(rest).unwrap_or(usize::MAX));
    Ok((head, len))
}

/// Uncompressed size from the gzip trailer (ISIZE, RFC 1952 §2.3.1), bounded
/// by the largest possible DEFLATE expansion so that a corrupt trailer cannot
/// cause a huge allocation.
fn gzip_size_hint(gz: &[u8]) -> usize {
    let Some(trailer) = gz.len().checked_sub(4).and_then(|start| gz.get(start..)) else {
        return 0;
    };
    let stored = trailer.try_into().map_or(0, u32::from_le_bytes) as usize;
    stored.min(gz.len().saturating_mul(MAX_DEFLATE_RATIO))
}

/// Checks the header of an IDX file with `D` dimensions and returns the
/// dimensions and the data (the buffer with its header removed).
fn parse<const D: usize>(
    path: &Path,
    mut bytes: Vec<u8>,
    expected_magic: u32,
    what: &str,
) -> Result<([usize; D], Vec<u8>)> {
    let dims = check_layout::<D>(path, &bytes, bytes.len(), expected_magic, what)?;
    bytes.drain(..4 * (1 + D));
    Ok((dims, bytes))
}

/// Checks the header of an IDX file with `D` dimensions, given its first bytes `head` (the
/// whole header if the file is that long) and its length `len`, and returns the dimensions.
fn check_layout<const D: usize>(
    path: &Path,
    head: &[u8],
    len: usize,
    expected_magic: u32,
    what: &str,
) -> Result<[usize; D]> {
    let file = path.display();
    let header_len = 4 * (1 + D);
    let Some(magic) = be_u32(head, 0) else {
        bail!(
            "{file} is truncated: an IDX {what} file starts with a 4-byte magic number \
             but the file holds only {len} bytes"
        );
    };
    if magic != expected_magic {
        bail!(
            "{file} has magic number 0x{magic:08x} ({}), expected 0x{expected_magic:08x} \
             ({expected_magic}): is this an IDX {what} file?",
            describe_magic(magic)
        );
    }
    if len < header_len || head.len() < header_len {
        bail!(
            "{file} is truncated: the IDX {what} header takes {header_len} bytes \
             but the file holds only {len}"
        );
    }
    let mut dims = [0usize; D];
    for (i, dim) in dims.iter_mut().enumerate() {
        *dim = be_u32(head, 4 * (1 + i)).unwrap_or_default() as usize;
    }
    let shape = dims.map(|d| d.to_string()).join("×");
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        bail!("{file} declares absurd IDX dimensions {shape}: their product overflows");
    };
    let found = len - header_len;
    if found < expected {
        bail!(
            "{file} is truncated: dimensions {shape} need {expected} data bytes after the \
             {header_len}-byte header but only {found} are there"
        );
    }
    if found > expected {
        bail!(
            "{file} has {} bytes of trailing garbage: dimensions {shape} need {expected} \
             data bytes after the {header_len}-byte header but {found} are there",
            found - expected
        );
    }
    Ok(dims)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(word.try_into().ok()?))
}

fn describe_magic(magic: u32) -> String {
    match magic {
        LABELS_MAGIC => "an IDX labels file".to_owned(),
        IMAGES_MAGIC => "an IDX images file".to_owned(),
        m if m >> 16 == 0 => {
            format!(
                "IDX data type 0x{:02x} with {} dimensions, not supported",
                (m >> 8) & 0xff,
                m & 0xff
            )
        }
        _ => "not an IDX header".to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Also holds the file writers that the other data modules' tests share.

    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh folder under the system temp dir, removed on drop.
    pub(crate) struct Scratch(PathBuf);

    impl Scratch {
        pub(crate) fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("prunelab-data-{}-{unique}-{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create scratch dir");
            Scratch(dir)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }

        /// Writes `bytes` to `rel` under the scratch folder, creating parents.
        pub(crate) fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().expect("parent")).expect("create parent");
            fs::write(&path, bytes).expect("write test file");
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    /// An IDX images file of `n` images of `rows`×`cols`, pixel `i` = `i % 251`.
    pub(crate) fn images_bytes(n: u32, rows: u32, cols: u32) -> Vec<u8> {
        let pixels: Vec<u8> = (0..n * rows * cols).map(|i| (i % 251) as u8).collect();
        idx_bytes(IMAGES_MAGIC, &[n, rows, cols], &pixels)
    }

    pub(crate) fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        idx_bytes(LABELS_MAGIC, &[labels.len() as u32], labels)
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).expect("gzip write");
        encoder.finish().expect("gzip finish")
    }

    fn error_text(result: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn images_round_trip_raw() {
        let dir = Scratch::new("images-raw");
        let path = dir.write("imgs-idx3-ubyte", &images_bytes(3, 2, 4));
        let images = read_images(&path).expect("read");
        assert_eq!((images.n, images.rows, images.cols, images.dim()), (3, 2, 4, 8));
        assert_eq!(images.pixels, (0..24).collect::<Vec<u8>>());
    }

    #[test]
    fn images_round_trip_gzip_detected_by_magic_not_name() {
        let dir = Scratch::new("images-gz");
        let raw = images_bytes(300, 5, 7);
        let named_gz = dir.write("imgs-idx3-ubyte.gz", &gzip(&raw));
        let unnamed_gz = dir.write("imgs-idx3-ubyte", &gzip(&raw));
        let expected: Vec<u8> = (0..300 * 35).map(|i| (i % 251) as u8).collect();
        for path in [named_gz, unnamed_gz] {
            let images = read_images(&path).expect("read");
            assert_eq!((images.n, images.rows, images.cols), (300, 5, 7));
            assert_eq!(images.pixels, expected);
        }
    }

    #[test]
    fn header_reader_agrees_with_the_full_reader_and_checks_the_length() {
        let dir = Scratch::new("images-header");
        let raw = images_bytes(30, 5, 7);
        let plain = dir.write("imgs-idx3-ubyte", &raw);
        let gz = dir.write("imgs-idx3-ubyte.gz", &gzip(&raw));
        for path in [&plain, &gz] {
            assert_eq!(read_images_header(path).expect("header"), [30, 5, 7]);
        }
        let cut = dir.write("cut-idx3-ubyte", &raw[..raw.len() - 1]);
        let msg = error_text(read_images_header(&cut));
        assert!(msg.contains("cut-idx3-ubyte is truncated"), "{msg}");
        assert!(msg.contains("need 1050 data bytes"), "{msg}");
        let mut bad_gz = gzip(&raw);
        let n = bad_gz.len();
        bad_gz[n - 6] ^= 0xff; // the CRC-32 in the trailer
        let bad = dir.write("bad-idx3-ubyte.gz", &bad_gz);
        let msg = error_text(read_images_header(&bad));
        assert!(msg.contains("bad-idx3-ubyte.gz is a corrupt or truncated gzip file"), "{msg}");
    }

    #[test]
    fn labels_round_trip_raw_and_gzip() {
        let dir = Scratch::new("labels");
        let labels = [7u8, 2, 1, 0, 4, 1, 4, 9, 5, 9];
        let raw = dir.write("labels-idx1-ubyte", &labels_bytes(&labels));
        let gz = dir.write("labels-idx1-ubyte.gz", &gzip(&labels_bytes(&labels)));
        assert_eq!(read_labels(&raw).expect("raw"), labels);
        assert_eq!(read_labels(&gz).expect("gz"), labels);
    }

    #[test]
    fn empty_labels_file_is_valid() {
        let dir = Scratch::new("labels-empty");
        let path = dir.write("empty-idx1-ubyte", &labels_bytes(&[]));
        assert_eq!(read_labels(&path).expect("read"), Vec::<u8>::new());
    }

    #[test]
    fn labels_file_read_as_images_names_both_magics() {
        let dir = Scratch::new("wrong-magic-images");
        let path = dir.write("labels-as-images", &labels_bytes(&[1, 2, 3]));
        let msg = error_text(read_images(&path));
        assert!(msg.contains("labels-as-images"), "{msg}");
        assert!(msg.contains("0x00000801 (an IDX labels file)"), "{msg}");
        assert!(msg.contains("expected 0x00000803 (2051)"), "{msg}");
        assert!(msg.contains("is this an IDX images file?"), "{msg}");
    }

    #[test]
    fn images_file_read_as_labels_is_refused() {
        let dir = Scratch::new("wrong-magic-labels");
        let path = dir.write("images-as-labels.gz", &gzip(&images_bytes(1, 2, 2)));
        let msg = error_text(read_labels(&path));
        assert!(msg.contains("images-as-labels.gz"), "{msg}");
        assert!(msg.contains("0x00000803 (an IDX images file)"), "{msg}");
        assert!(msg.contains("expected 0x00000801 (2049)"), "{msg}");
        assert!(msg.contains("is this an IDX labels file?"), "{msg}");
    }

    #[test]
    fn non_idx_file_is_refused_with_its_magic() {
        let dir = Scratch::new("not-idx");
        let path = dir.write("notes.txt", b"hello, world\n");
        let msg = error_text(read_images(&path));
        assert!(msg.contains("notes.txt"), "{msg}");
        assert!(msg.contains("0x68656c6c (not an IDX header)"), "{msg}");
    }

    #[test]
    fn unsupported_idx_data_type_is_named() {
        let dir = Scratch::new("float-idx");
        let path = dir.write("floats-idx3", &idx_bytes(0x0000_0d03, &[0, 1, 1], &[]));
        let msg = error_text(read_images(&path));
        assert!(msg.contains("IDX data type 0x0d with 3 dimensions, not supported"), "{msg}");
    }

    #[test]
    fn truncated_data_reports_expected_and_found() {
        let dir = Scratch::new("truncated");
        let mut bytes = images_bytes(4, 3, 3);
        bytes.truncate(bytes.len() - 5);
        let path = dir.write("short-idx3-ubyte", &bytes);
        let msg = error_text(read_images(&path));
        assert!(msg.contains("short-idx3-ubyte is truncated"), "{msg}");
        assert!(msg.contains("4×3×3 need 36 data bytes"), "{msg}");
        assert!(msg.contains("only 31 are there"), "{msg}");
    }

    #[test]
    fn truncated_header_and_empty_file_are_refused() {
        let dir = Scratch::new("short-header");
        let header_only = dir.write("header-idx3", &images_bytes(1, 1, 1)[..10]);
        let msg = error_text(read_images(&header_only));
        assert!(msg.contains("header-idx3 is truncated"), "{msg}");
        assert!(msg.contains("header takes 16 bytes but the file holds only 10"), "{msg}");

        let empty = dir.write("empty-idx1", &[]);
        let msg = error_text(read_labels(&empty));
        assert!(msg.contains("empty-idx1 is truncated"), "{msg}");
        assert!(msg.contains("holds only 0 bytes"), "{msg}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let dir = Scratch::new("trailing");
        let mut bytes = labels_bytes(&[1, 2, 3]);
        bytes.extend_from_slice(b"junk");
        let path = dir.write("long-idx1-ubyte.gz", &gzip(&bytes));
        let msg = error_text(read_labels(&path));
        assert!(msg.contains("long-idx1-ubyte.gz has 4 bytes of trailing garbage"), "{msg}");
        assert!(msg.contains("need 3 data bytes"), "{msg}");
        assert!(msg.contains("but 7 are there"), "{msg}");
    }

    #[test]
    fn corrupt_gzip_is_refused() {
        let dir = Scratch::new("corrupt-gz");
        let mut gz = gzip(&images_bytes(50, 8, 8));
        let mid = gz.len() / 2;
        for byte in &mut gz[mid..mid + 16] {
            *byte ^= 0xa5;
        }
        let path = dir.write("bad-idx3-ubyte.gz", &gz);
        let msg = error_text(read_images(&path));
        assert!(msg.contains("bad-idx3-ubyte.gz is a corrupt or truncated gzip file"), "{msg}");
    }

    #[test]
    fn truncated_gzip_is_refused() {
        let dir = Scratch::new("truncated-gz");
        let gz = gzip(&images_bytes(50, 8, 8));
        let path = dir.write("cut-idx3-ubyte.gz", &gz[..gz.len() / 2]);
        let msg = error_text(read_images(&path));
        assert!(msg.contains("cut-idx3-ubyte.gz is a corrupt or truncated gzip file"), "{msg}");
    }

    #[test]
    fn overflowing_dimensions_are_refused() {
        let dir = Scratch::new("overflow");
        let path = dir.write("huge-idx3", &idx_bytes(IMAGES_MAGIC, &[u32::MAX; 3], &[0; 8]));
        let msg = error_text(read_images(&path));
        assert!(msg.contains("huge-idx3 declares absurd IDX dimensions"), "{msg}");
        assert!(msg.contains("product overflows"), "{msg}");
    }

    #[test]
    fn huge_declared_size_is_refused_without_allocating() {
        // 4294967295×28×28 bytes is over 3 TB: had the reader trusted the
        // header and allocated it, this test would abort instead of failing.
        let dir = Scratch::new("huge");
        let path = dir.write("huge-idx3", &idx_bytes(IMAGES_MAGIC, &[u32::MAX, 28, 28], &[0; 8]));
        let msg = error_text(read_images(&path));
        assert!(msg.contains("huge-idx3 is truncated"), "{msg}");
        assert!(msg.contains("need 3367254359280 data bytes"), "{msg}");
        assert!(msg.contains("only 8 are there"), "{msg}");
    }

    #[test]
    fn zero_sized_images_are_refused() {
        let dir = Scratch::new("zero-size");
        let path = dir.write("flat-idx3", &idx_bytes(IMAGES_MAGIC, &[5, 0, 28], &[]));
        let msg = error_text(read_images(&path));
        assert!(msg.contains("flat-idx3 declares absurd IDX image size 0×28"), "{msg}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = Scratch::new("missing");
        let path = dir.path().join("nowhere-idx1-ubyte");
        let msg = error_text(read_labels(&path));
        assert!(msg.contains("cannot read"), "{msg}");
        assert!(msg.contains("nowhere-idx1-ubyte"), "{msg}");
    }

    #[test]
    fn gzip_size_hint_is_bounded() {
        assert_eq!(gzip_size_hint(&[]), 0);
        assert_eq!(gzip_size_hint(&[0x1f, 0x8b, 0xff]), 0);
        let gz = gzip(&[7; 1000]);
        assert_eq!(gzip_size_hint(&gz), 1000);
        let mut lying = gz.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_size_hint(&lying), n * MAX_DEFLATE_RATIO);
    }
}
