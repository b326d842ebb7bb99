//! Reader for the binary version of CIFAR-10 (Krizhevsky, "Learning Multiple
//! Layers of Features from Tiny Images", 2009;
//! <https://www.cs.toronto.edu/~kriz/cifar.html>, `cifar-10-binary.tar.gz`).
//!
//! The format has no header and no magic number: a file is a run of
//! 3073-byte records, one label byte (0..=9) followed by 3072 pixel bytes,
//! 1024 red then 1024 green then 1024 blue, each a 32×32 plane in row-major
//! order. The archive's `cifar-10-batches-bin/` folder holds the training
//! batches `data_batch_1.bin` … `data_batch_5.bin` and `test_batch.bin`,
//! 10,000 records each.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Width and height of an image.
pub const SIDE: usize = 32;
/// Colour planes per image (R, G, B).
pub const CHANNELS: usize = 3;
/// Pixel bytes per image: 3×32×32.
pub const IMAGE_LEN: usize = CHANNELS * SIDE * SIDE;
/// Bytes per record: the label byte and the pixels.
pub const RECORD_LEN: usize = 1 + IMAGE_LEN;
/// Number of classes; labels are `0..CLASSES`.
pub const CLASSES: u8 = 10;
/// Records in each of the official batch files.
pub const RECORDS_PER_FILE: usize = 10_000;

/// The records of one batch file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub n: usize,
    pub labels: Vec<u8>,
    /// `n * 3072` bytes, each image channel-major (R, G, B planes) as in the file.
    pub pixels: Vec<u8>,
}

/// Reads a CIFAR-10 binary batch holding any positive whole number of records.
pub fn read_batch(path: &Path) -> Result<Batch> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let n = check_length(path, bytes.len(), &bytes)?;
    let mut labels = Vec::with_capacity(n);
    let mut pixels = Vec::with_capacity(n * IMAGE_LEN);
    for (index, record) in bytes.chunks_exact(RECORD_LEN).enumerate() {
        let (label, image) = (record[0], &record[1..]);
        check_label(path, index, label)?;
        labels.push(label);
        pixels.extend_from_slice(image);
    }
    Ok(Batch { n, labels, pixels })
}

/// Reads only the labels of a CIFAR-10 binary batch (one byte per record, the pixels skipped),
/// with the same checks as [`read_batch`].
pub fn read_labels(path: &Path) -> Result<Vec<u8>> {
    let cannot_read = || format!("cannot read {}", path.display());
    let mut file = fs::File::open(path).with_context(cannot_read)?;
    let len = file.metadata().with_context(cannot_read)?.len();
    let mut head = Vec::with_capacity(2);
    (&mut file).take(2).read_to_end(&mut head).with_context(cannot_read)?;
    let n = check_length(path, usize::try_from(len).unwrap_or(usize::MAX), &head)?;
    let mut labels = Vec::with_capacity(n);
    let mut label = [0u8];
    for index in 0..n {
        file.seek(SeekFrom::Start((index * RECORD_LEN) as u64)).with_context(cannot_read)?;
        file.read_exact(&mut label).with_context(cannot_read)?;
        check_label(path, index, label[0])?;
        labels.push(label[0]);
    }
    Ok(labels)
}

/// The number of records in a batch file of `len` bytes that starts with `head`.
fn check_length(path: &Path, len: usize, head: &[u8]) -> Result<usize> {
    let file = path.display();
    if len == 0 {
        bail!("{file} is empty, but a CIFAR-10 batch holds {RECORD_LEN}-byte records");
    }
    if !len.is_multiple_of(RECORD_LEN) {
        bail!(
            "{file} holds {len} bytes, not a whole number of {RECORD_LEN}-byte CIFAR-10 records \
             ({} bytes over){}",
            len % RECORD_LEN,
            length_hint(head, len)
        );
    }
    Ok(len / RECORD_LEN)
}

fn check_label(path: &Path, index: usize, label: u8) -> Result<()> {
    if label >= CLASSES {
        bail!("{} record {index} has label {label}, but CIFAR-10 labels are 0..=9", path.display());
    }
    Ok(())
}

/// A guess at what a file of the wrong length is, for the error message.
fn length_hint(head: &[u8], len: usize) -> &'static str {
    if head.first() == Some(&0x80) {
        "; it looks like a Python pickle, so use the binary version (cifar-10-binary.tar.gz)"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "; it is gzip-compressed, so extract cifar-10-binary.tar.gz first"
    } else if len.is_multiple_of(RECORD_LEN + 1) {
        "; its length fits CIFAR-100's 3074-byte records"
    } else {
        ""
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Also holds the batch writer that the other data modules' tests share.

    use super::*;
    use crate::data::idx::tests::Scratch;

    /// A batch file whose record `i` has label `labels[i]` and pixel `j` = `(i + j) % 256`.
    pub(crate) fn batch_bytes(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(labels.len() * RECORD_LEN);
        for (i, &label) in labels.iter().enumerate() {
            out.push(label);
            out.extend((0..IMAGE_LEN).map(|j| ((i + j) % 256) as u8));
        }
        out
    }

    fn error_text(result: Result<Batch>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn batch_round_trip() {
        let dir = Scratch::new("cifar-round-trip");
        let path = dir.write("data_batch_1.bin", &batch_bytes(&[3, 9, 0]));
        let batch = read_batch(&path).expect("read");
        assert_eq!(batch.n, 3);
        assert_eq!(batch.labels, [3, 9, 0]);
        assert_eq!(batch.pixels.len(), 3 * IMAGE_LEN);
        // Record 1's red plane starts with value 1 and its blue plane ends with 1 + 3071;
        // record 2's green plane starts with 2 + 1024.
        assert_eq!(batch.pixels[IMAGE_LEN], 1);
        assert_eq!(batch.pixels[2 * IMAGE_LEN - 1], (3072 % 256) as u8);
        assert_eq!(batch.pixels[2 * IMAGE_LEN + 1024], ((2 + 1024) % 256) as u8);
    }

    #[test]
    fn labels_alone_are_read_with_the_same_checks() {
        let dir = Scratch::new("cifar-labels");
        let path = dir.write("data_batch_1.bin", &batch_bytes(&[3, 9, 0, 5]));
        assert_eq!(read_labels(&path).expect("labels"), [3, 9, 0, 5]);
        let bad = dir.write("data_batch_2.bin", &batch_bytes(&[1, 12]));
        let msg = format!("{:#}", read_labels(&bad).expect_err("label 12"));
        assert!(msg.contains("data_batch_2.bin record 1 has label 12"), "{msg}");
        let mut short = batch_bytes(&[1, 2]);
        short.pop();
        let short = dir.write("data_batch_3.bin", &short);
        let msg = format!("{:#}", read_labels(&short).expect_err("short"));
        assert!(msg.contains("data_batch_3.bin holds 6145 bytes"), "{msg}");
    }

    #[test]
    fn empty_file_is_refused() {
        let dir = Scratch::new("cifar-empty");
        let path = dir.write("test_batch.bin", &[]);
        let msg = error_text(read_batch(&path));
        assert!(msg.contains("test_batch.bin is empty"), "{msg}");
        assert!(msg.contains("3073-byte records"), "{msg}");
    }

    #[test]
    fn partial_record_is_refused() {
        let dir = Scratch::new("cifar-length");
        let mut bytes = batch_bytes(&[1, 2]);
        bytes.extend_from_slice(&[0; 5]);
        let path = dir.write("data_batch_2.bin", &bytes);
        let msg = error_text(read_batch(&path));
        assert!(msg.contains("data_batch_2.bin holds 6151 bytes"), "{msg}");
        assert!(
            msg.contains("not a whole number of 3073-byte CIFAR-10 records (5 bytes over)"),
            "{msg}"
        );
    }

    #[test]
    fn wrong_versions_get_a_hint() {
        let dir = Scratch::new("cifar-hints");
        let pickle = dir.write("data_batch_1", &[0x80, 0x02, b'}', b'q']);
        let msg = error_text(read_batch(&pickle));
        assert!(msg.contains("data_batch_1 holds 4 bytes"), "{msg}");
        assert!(msg.contains("Python pickle"), "{msg}");

        let cifar100 = dir.write("train.bin", &vec![0; 2 * 3074]);
        let msg = error_text(read_batch(&cifar100));
        assert!(msg.contains("train.bin holds 6148 bytes"), "{msg}");
        assert!(msg.contains("CIFAR-100's 3074-byte records"), "{msg}");
    }

    #[test]
    fn label_ten_is_refused_with_record_index() {
        let dir = Scratch::new("cifar-label");
        let path = dir.write("data_batch_3.bin", &batch_bytes(&[0, 9, 10, 4]));
        let msg = error_text(read_batch(&path));
        assert!(msg.contains("data_batch_3.bin record 2 has label 10"), "{msg}");
        assert!(msg.contains("labels are 0..=9"), "{msg}");
    }

    #[test]
    fn missing_file_is_named() {
        let dir = Scratch::new("cifar-missing");
        let msg = error_text(read_batch(&dir.path().join("data_batch_4.bin")));
        assert!(msg.contains("cannot read"), "{msg}");
        assert!(msg.contains("data_batch_4.bin"), "{msg}");
    }
}
