//! Finding and loading a dataset folder: the MNIST-family IDX files (magic
//! numbers 2049 for labels and 2051 for images, raw or gzip; see
//! [`crate::data::idx`]) and the binary version of CIFAR-10 (3073-byte
//! records, no magic; see [`crate::data::cifar`]).
//!
//! [`locate`] recognises a plain folder of `train-images-idx3-ubyte`,
//! `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
//! `t10k-labels-idx1-ubyte` (each raw or `.gz`, the raw file preferred), such
//! as Debian's `/usr/share/datasets/fashion-mnist` (package
//! `dataset-fashion-mnist`); torchvision's `<root>/MNIST/raw` and
//! `<root>/FashionMNIST/raw`, given `<root>` or `<root>/MNIST`; and
//! CIFAR-10's `cifar-10-batches-bin` folder, given it or its parent.
//! [`load`] reads the files it found into `u8` arrays; [`survey`] reads only what a plan needs
//! to know (the headers, the file lengths and the labels). Both check that each image file
//! and its labels hold the same count, that training and test images have the same size, and
//! that the labels number the classes: the training labels are 0..K−1 with every class present,
//! and every test label is one of them (a stray byte would otherwise add classes silently).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::data::{cifar, idx};

/// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// IDX file names: training images and labels, then test images and labels.
pub const IDX_NAMES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];
/// CIFAR-10 training batch file names.
pub const CIFAR_TRAIN_NAMES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// CIFAR-10 test batch file name.
pub const CIFAR_TEST_NAME: &str = "test_batch.bin";
/// The folder that `cifar-10-binary.tar.gz` extracts to.
pub const CIFAR_FOLDER: &str = "cifar-10-batches-bin";

/// Sub-folders searched when the given folder itself holds no dataset file.
const NESTED: [&str; 4] = ["raw", "MNIST/raw", "FashionMNIST/raw", CIFAR_FOLDER];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Idx,
    Cifar10,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Idx => "IDX",
            Format::Cifar10 => "CIFAR-10",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxFiles {
    pub train_images: PathBuf,
    pub train_labels: PathBuf,
    pub test_images: PathBuf,
    pub test_labels: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarFiles {
    /// `data_batch_1.bin` … `data_batch_5.bin`, in that order.
    pub train: Vec<PathBuf>,
    pub test: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetFiles {
    Idx(IdxFiles),
    Cifar10(CifarFiles),
}

impl DatasetFiles {
    pub fn format(&self) -> Format {
        match self {
            DatasetFiles::Idx(_) => Format::Idx,
            DatasetFiles::Cifar10(_) => Format::Cifar10,
        }
    }
}

/// A whole dataset as bytes: `n_train * dim` and `n_test * dim` pixels (IDX
/// images row-major; CIFAR-10 images channel-major, `dim` = 3072) and one
/// label per image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub train_x: Vec<u8>,
    pub train_y: Vec<u8>,
    pub test_x: Vec<u8>,
    pub test_y: Vec<u8>,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    /// The number of classes, K: the training labels are 0..K−1.
    pub classes: usize,
}

/// What a dataset's files declare, found without reading the pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Survey {
    pub format: Format,
    pub n_train: usize,
    pub n_test: usize,
    pub dim: usize,
    pub classes: usize,
}

/// What one folder holds of one format.
struct Found {
    folder: PathBuf,
    format: Format,
    /// The files, or the names of the missing ones.
    files: Result<DatasetFiles, Vec<String>>,
}

/// Resolves `dir` to the files of the one dataset it holds (see the module
/// documentation for the layouts recognised).
pub fn locate(dir: &Path) -> Result<DatasetFiles> {
    let meta = fs::metadata(dir)
        .with_context(|| format!("cannot open dataset folder {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("{} is a file, not a dataset folder", dir.display());
    }
    let mut found = probe(dir);
    if found.is_empty() {
        found = NESTED.iter().flat_map(|sub| probe(&dir.join(sub))).collect();
    }
    match found.pop() {
        None => Err(not_found(dir)),
        Some(only) if found.is_empty() => only.files.map_err(|missing| {
            let (verb, noun) = if missing.len() == 1 { ("is", "file") } else { ("are", "files") };
            anyhow!(
                "{} holds an incomplete {} dataset: the {noun} {} {verb} missing",
                only.folder.display(),
                only.format,
                missing.join(", ")
            )
        }),
        Some(last) => {
            found.push(last);
            let list: Vec<String> =
                found.iter().map(|f| format!("{} in {}", f.format, f.folder.display())).collect();
            bail!(
                "{} holds more than one dataset ({}); pass the folder of the one to use",
                dir.display(),
                list.join(", ")
            )
        }
    }
}

/// The datasets, complete or not, that `folder` holds directly.
fn probe(folder: &Path) -> Vec<Found> {
    if !folder.is_dir() {
        return Vec::new();
    }
    [probe_idx(folder), probe_cifar(folder)].into_iter().flatten().collect()
}

fn probe_idx(folder: &Path) -> Option<Found> {
    let paths = IDX_NAMES.map(|name| raw_or_gz(folder, name));
    if paths.iter().all(Option::is_none) {
        return None;
    }
    let files = match paths {
        [Some(train_images), Some(train_labels), Some(test_images), Some(test_labels)] => {
            Ok(DatasetFiles::Idx(IdxFiles { train_images, train_labels, test_images, test_labels }))
        }
        _ => Err(missing(&IDX_NAMES, &paths, " (or .gz)")),
    };
    Some(Found { folder: folder.to_owned(), format: Format::Idx, files })
}

fn probe_cifar(folder: &Path) -> Option<Found> {
    let file = |name: &str| Some(folder.join(name)).filter(|p| p.is_file());
    let train = CIFAR_TRAIN_NAMES.map(file);
    let test = file(CIFAR_TEST_NAME);
    if test.is_none() && train.iter().all(Option::is_none) {
        return None;
    }
    let files = match (train.iter().cloned().collect::<Option<Vec<PathBuf>>>(), test) {
        (Some(train), Some(test)) => Ok(DatasetFiles::Cifar10(CifarFiles { train, test })),
        (_, test) => {
            let mut missing = missing(&CIFAR_TRAIN_NAMES, &train, "");
            if test.is_none() {
                missing.push(CIFAR_TEST_NAME.to_owned());
            }
            Err(missing)
        }
    };
    Some(Found { folder: folder.to_owned(), format: Format::Cifar10, files })
}

/// `folder/name` if it is a file, else `folder/name.gz` if that is one.
fn raw_or_gz(folder: &Path, name: &str) -> Option<PathBuf> {
    [folder.join(name), folder.join(format!("{name}.gz"))].into_iter().find(|p| p.is_file())
}

fn missing(names: &[&str], paths: &[Option<PathBuf>], suffix: &str) -> Vec<String> {
    names
        .iter()
        .zip(paths)
        .filter(|(_, p)| p.is_none())
        .map(|(name, _)| format!("{name}{suffix}"))
        .collect()
}

fn not_found(dir: &Path) -> anyhow::Error {
    let hint = if dir.join("cifar-10-batches-py").is_dir() || dir.join("data_batch_1").is_file() {
        " It holds the Python version of CIFAR-10; use the binary version (cifar-10-binary.tar.gz)."
    } else if dir.join("cifar-10-binary.tar.gz").is_file() {
        " Extract cifar-10-binary.tar.gz there first."
    } else {
        ""
    };
    anyhow!(
        "no dataset found in {}: looked for the IDX files {} (each raw or .gz) in it and in raw/, \
         MNIST/raw/ and FashionMNIST/raw/, and for the CIFAR-10 binary batches {}, {} … {} and \
         {CIFAR_TEST_NAME} in it and in {CIFAR_FOLDER}/.{hint}",
        dir.display(),
        IDX_NAMES.join(", "),
        CIFAR_TRAIN_NAMES[0],
        CIFAR_TRAIN_NAMES[1],
        CIFAR_TRAIN_NAMES[4],
    )
}

/// Reads every file of the dataset, checking that each image file and its
/// labels hold the same count and that training and test images have the
/// same size; CIFAR-10 training batches are concatenated in order.
pub fn load(files: &DatasetFiles) -> Result<Loaded> {
    match files {
        DatasetFiles::Idx(files) => load_idx(files),
        DatasetFiles::Cifar10(files) => load_cifar(files),
    }
}

/// Checks every file of the dataset as [`load`] does, reading only the image files' headers
/// and lengths (a gzip file is inflated as a stream, not kept) and the labels.
pub fn survey(files: &DatasetFiles) -> Result<Survey> {
    match files {
        DatasetFiles::Idx(files) => survey_idx(files),
        DatasetFiles::Cifar10(files) => survey_cifar(files),
    }
}

fn survey_idx(files: &IdxFiles) -> Result<Survey> {
    let [n_train, rows, cols] = idx::read_images_header(&files.train_images)?;
    let train_y = idx::read_labels(&files.train_labels)?;
    check_counts(&files.train_images, n_train, &files.train_labels, train_y.len())?;
    let [n_test, test_rows, test_cols] = idx::read_images_header(&files.test_images)?;
    let test_y = idx::read_labels(&files.test_labels)?;
    check_counts(&files.test_images, n_test, &files.test_labels, test_y.len())?;
    check_same_size(files, (rows, cols), (test_rows, test_cols))?;
    let classes = idx_classes(files, &train_y, &test_y)?;
    Ok(Survey { format: Format::Idx, n_train, n_test, dim: rows * cols, classes })
}

fn survey_cifar(files: &CifarFiles) -> Result<Survey> {
    let train =
        files.train.iter().map(|path| cifar::read_labels(path)).collect::<Result<Vec<_>>>()?;
    let test_y = cifar::read_labels(&files.test)?;
    let parts: Vec<(&Path, &[u8])> =
        files.train.iter().map(PathBuf::as_path).zip(train.iter().map(Vec::as_slice)).collect();
    let classes = check_classes(&parts, &cifar_train_names(files), &files.test, &test_y)?;
    let n_train = train.iter().map(Vec::len).sum();
    let dim = cifar::IMAGE_LEN;
    Ok(Survey { format: Format::Cifar10, n_train, n_test: test_y.len(), dim, classes })
}

fn load_idx(files: &IdxFiles) -> Result<Loaded> {
    let (train, train_y) = read_idx_pair(&files.train_images, &files.train_labels)?;
    let (test, test_y) = read_idx_pair(&files.test_images, &files.test_labels)?;
    check_same_size(files, (train.rows, train.cols), (test.rows, test.cols))?;
    let classes = idx_classes(files, &train_y, &test_y)?;
    Ok(Loaded {
        n_train: train.n,
        n_test: test.n,
        dim: train.dim(),
        train_x: train.pixels,
        train_y,
        test_x: test.pixels,
        test_y,
        classes,
    })
}

fn check_same_size(files: &IdxFiles, train: (usize, usize), test: (usize, usize)) -> Result<()> {
    if train != test {
        bail!(
            "training images {} are {}×{} but test images {} are {}×{}",
            files.train_images.display(),
            train.0,
            train.1,
            files.test_images.display(),
            test.0,
            test.1
        );
    }
    Ok(())
}

fn idx_classes(files: &IdxFiles, train_y: &[u8], test_y: &[u8]) -> Result<usize> {
    let train_name = files.train_labels.display().to_string();
    check_classes(&[(&files.train_labels, train_y)], &train_name, &files.test_labels, test_y)
}

fn read_idx_pair(images_path: &Path, labels_path: &Path) -> Result<(idx::Images, Vec<u8>)> {
    let images = idx::read_images(images_path)?;
    let labels = idx::read_labels(labels_path)?;
    check_counts(images_path, images.n, labels_path, labels.len())?;
    Ok((images, labels))
}

/// Every image needs its label, and a split needs images.
fn check_counts(images: &Path, n_images: usize, labels: &Path, n_labels: usize) -> Result<()> {
    if n_images != n_labels {
        bail!(
            "{} holds {n_images} images but {} holds {n_labels} labels",
            images.display(),
            labels.display()
        );
    }
    if n_images == 0 {
        bail!("{} holds no images", images.display());
    }
    Ok(())
}

/// The number of classes, K, after checking that the training labels (`train`: each file and
/// its labels) are 0..K−1 with every class present, K ≥ 2, and that every test label is below K.
/// `train_name` names the training label files in messages.
fn check_classes(
    train: &[(&Path, &[u8])],
    train_name: &str,
    test: &Path,
    test_y: &[u8],
) -> Result<usize> {
    let mut first: [Option<(usize, usize)>; 256] = [None; 256];
    for (f, (_, labels)) in train.iter().enumerate() {
        for (i, &label) in labels.iter().enumerate() {
            first[label as usize].get_or_insert((f, i));
        }
    }
    let Some(max) = (0..256).rev().find(|&l| first[l].is_some()) else {
        bail!("{train_name} holds no training labels");
    };
    let (f, i) = first[max].expect("found");
    let file = train[f].0.display();
    if let Some(gap) = (0..max).find(|&c| first[c].is_none()) {
        bail!(
            "{file}: training sample {i} has label {max}, but no training sample has label {gap}: \
             labels must number the classes 0, 1, 2, … without gaps"
        );
    }
    if max == 0 {
        bail!(
            "{train_name}: every training label is 0, but a classifier needs two classes at least"
        );
    }
    if let Some((j, label)) = test_y.iter().enumerate().find(|(_, &l)| l as usize > max) {
        bail!(
            "{}: test sample {j} has label {label}, a class that no training sample has \
             (the training labels in {train_name} are 0..={max})",
            test.display()
        );
    }
    Ok(max + 1)
}

fn cifar_train_names(files: &CifarFiles) -> String {
    match files.train.as_slice() {
        [only] => only.display().to_string(),
        [first, .., last] => format!("{} … {}", first.display(), last.display()),
        [] => "no training batch".into(),
    }
}

fn load_cifar(files: &CifarFiles) -> Result<Loaded> {
    if files.train.is_empty() {
        bail!("no CIFAR-10 training batches were given alongside {}", files.test.display());
    }
    let mut train_x = Vec::new();
    let mut train_y = Vec::new();
    let mut ends = Vec::with_capacity(files.train.len());
    for path in &files.train {
        let batch = cifar::read_batch(path)?;
        if train_x.is_empty() {
            // The batches are usually the same size: allocate once.
            train_x.reserve_exact(batch.pixels.len() * files.train.len());
            train_y.reserve_exact(batch.n * files.train.len());
        }
        train_x.extend_from_slice(&batch.pixels);
        train_y.extend_from_slice(&batch.labels);
        ends.push(train_y.len());
    }
    let test = cifar::read_batch(&files.test)?;
    let starts = std::iter::once(0).chain(ends.iter().copied());
    let parts: Vec<(&Path, &[u8])> = files
        .train
        .iter()
        .zip(starts.zip(&ends))
        .map(|(path, (start, &end))| (path.as_path(), &train_y[start..end]))
        .collect();
    let classes = check_classes(&parts, &cifar_train_names(files), &files.test, &test.labels)?;
    Ok(Loaded {
        n_train: train_y.len(),
        n_test: test.n,
        dim: cifar::IMAGE_LEN,
        train_x,
        train_y,
        test_x: test.pixels,
        test_y: test.labels,
        classes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::tests::batch_bytes;
    use crate::data::idx::tests::{gzip, images_bytes, labels_bytes, Scratch};

    /// Writes the four IDX files under `sub` (gzip-compressed when `gz`);
    /// image `i` has label `i % 10`.
    fn write_idx_set(
        dir: &Scratch,
        sub: &str,
        gz: bool,
        n_train: u32,
        n_test: u32,
        side: u32,
    ) -> PathBuf {
        let labels = |n: u32| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
        let contents = [
            images_bytes(n_train, side, side),
            labels_bytes(&labels(n_train)),
            images_bytes(n_test, side, side),
            labels_bytes(&labels(n_test)),
        ];
        for (name, bytes) in IDX_NAMES.iter().zip(contents) {
            if gz {
                dir.write(&format!("{sub}/{name}.gz"), &gzip(&bytes));
            } else {
                dir.write(&format!("{sub}/{name}"), &bytes);
            }
        }
        dir.path().join(sub)
    }

    /// Writes the six CIFAR-10 batches under `sub`, batch `b` holding
    /// `b + 1` records labelled `b`; the test batch holds two records, labelled 3 and 4.
    fn write_cifar_set(dir: &Scratch, sub: &str) -> PathBuf {
        for (b, name) in CIFAR_TRAIN_NAMES.iter().enumerate() {
            dir.write(&format!("{sub}/{name}"), &batch_bytes(&vec![b as u8; b + 1]));
        }
        dir.write(&format!("{sub}/{CIFAR_TEST_NAME}"), &batch_bytes(&[3, 4]));
        dir.path().join(sub)
    }

    fn idx_files(files: DatasetFiles) -> IdxFiles {
        match files {
            DatasetFiles::Idx(files) => files,
            other => panic!("expected IDX files, got {other:?}"),
        }
    }

    fn error_text<T: fmt::Debug>(result: Result<T>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn locates_plain_raw_folder() {
        let dir = Scratch::new("plain-raw");
        let folder = write_idx_set(&dir, "mnist", false, 3, 2, 4);
        let files = idx_files(locate(&folder).expect("locate"));
        assert_eq!(files.train_images, folder.join("train-images-idx3-ubyte"));
        assert_eq!(files.train_labels, folder.join("train-labels-idx1-ubyte"));
        assert_eq!(files.test_images, folder.join("t10k-images-idx3-ubyte"));
        assert_eq!(files.test_labels, folder.join("t10k-labels-idx1-ubyte"));
    }

    #[test]
    fn locates_plain_gz_folder_like_debian() {
        let dir = Scratch::new("plain-gz");
        let folder = write_idx_set(&dir, "fashion-mnist", true, 3, 2, 4);
        let files = locate(&folder).expect("locate");
        assert_eq!(files.format(), Format::Idx);
        let files = idx_files(files);
        assert_eq!(files.train_images, folder.join("train-images-idx3-ubyte.gz"));
        assert_eq!(files.test_labels, folder.join("t10k-labels-idx1-ubyte.gz"));
    }

    #[test]
    fn prefers_raw_file_over_gz() {
        let dir = Scratch::new("raw-and-gz");
        write_idx_set(&dir, "both", true, 3, 2, 4);
        let folder = write_idx_set(&dir, "both", false, 3, 2, 4);
        let files = idx_files(locate(&folder).expect("locate"));
        assert_eq!(files.train_images, folder.join("train-images-idx3-ubyte"));
        assert_eq!(files.test_labels, folder.join("t10k-labels-idx1-ubyte"));
    }

    #[test]
    fn locates_torchvision_mnist_from_root_and_from_mnist_folder() {
        let dir = Scratch::new("torchvision-mnist");
        let raw = write_idx_set(&dir, "MNIST/raw", true, 3, 2, 4);
        for given in [dir.path().to_owned(), dir.path().join("MNIST"), raw.clone()] {
            let files = idx_files(locate(&given).expect("locate"));
            assert_eq!(
                files.train_labels,
                raw.join("train-labels-idx1-ubyte.gz"),
                "given {given:?}"
            );
        }
    }

    #[test]
    fn locates_torchvision_fashion_mnist() {
        let dir = Scratch::new("torchvision-fashion");
        let raw = write_idx_set(&dir, "FashionMNIST/raw", false, 3, 2, 4);
        for given in [dir.path().to_owned(), dir.path().join("FashionMNIST")] {
            let files = idx_files(locate(&given).expect("locate"));
            assert_eq!(files.test_images, raw.join("t10k-images-idx3-ubyte"), "given {given:?}");
        }
    }

    #[test]
    fn root_with_two_datasets_is_ambiguous() {
        let dir = Scratch::new("ambiguous");
        write_idx_set(&dir, "MNIST/raw", false, 3, 2, 4);
        write_idx_set(&dir, "FashionMNIST/raw", false, 3, 2, 4);
        let msg = error_text(locate(dir.path()));
        assert!(msg.contains("holds more than one dataset"), "{msg}");
        assert!(
            msg.contains(&format!("IDX in {}", dir.path().join("MNIST/raw").display())),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("IDX in {}", dir.path().join("FashionMNIST/raw").display())),
            "{msg}"
        );
    }

    #[test]
    fn locates_cifar_folder_and_its_parent() {
        let dir = Scratch::new("cifar");
        let folder = write_cifar_set(&dir, CIFAR_FOLDER);
        for given in [folder.clone(), dir.path().to_owned()] {
            match locate(&given).expect("locate") {
                DatasetFiles::Cifar10(files) => {
                    let expected: Vec<PathBuf> =
                        CIFAR_TRAIN_NAMES.iter().map(|n| folder.join(n)).collect();
                    assert_eq!(files.train, expected);
                    assert_eq!(files.test, folder.join(CIFAR_TEST_NAME));
                }
                other => panic!("expected CIFAR-10 files given {given:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn incomplete_idx_folder_names_the_missing_file() {
        let dir = Scratch::new("partial-idx");
        let folder = write_idx_set(&dir, "MNIST/raw", true, 3, 2, 4);
        fs::remove_file(folder.join("t10k-labels-idx1-ubyte.gz")).expect("remove");
        let msg = error_text(locate(dir.path()));
        assert!(
            msg.contains(&format!("{} holds an incomplete IDX dataset", folder.display())),
            "{msg}"
        );
        assert!(msg.contains("the file t10k-labels-idx1-ubyte (or .gz) is missing"), "{msg}");
    }

    #[test]
    fn incomplete_cifar_folder_names_the_missing_files() {
        let dir = Scratch::new("partial-cifar");
        let folder = write_cifar_set(&dir, CIFAR_FOLDER);
        fs::remove_file(folder.join("data_batch_3.bin")).expect("remove");
        fs::remove_file(folder.join(CIFAR_TEST_NAME)).expect("remove");
        let msg = error_text(locate(&folder));
        assert!(msg.contains("incomplete CIFAR-10 dataset"), "{msg}");
        assert!(msg.contains("the files data_batch_3.bin, test_batch.bin are missing"), "{msg}");
    }

    #[test]
    fn empty_folder_lists_what_was_looked_for() {
        let dir = Scratch::new("nothing");
        dir.write("README", b"not a dataset");
        let msg = error_text(locate(dir.path()));
        assert!(msg.contains(&format!("no dataset found in {}", dir.path().display())), "{msg}");
        for expected in IDX_NAMES.iter().chain(&[
            "MNIST/raw/",
            "FashionMNIST/raw/",
            "data_batch_1.bin",
            CIFAR_FOLDER,
        ]) {
            assert!(msg.contains(expected), "{expected} not in: {msg}");
        }
    }

    #[test]
    fn python_cifar_gets_a_hint() {
        let dir = Scratch::new("cifar-py");
        dir.write("cifar-10-batches-py/data_batch_1", &[0x80, 0x02]);
        let msg = error_text(locate(dir.path()));
        assert!(msg.contains("no dataset found"), "{msg}");
        assert!(msg.contains("Python version of CIFAR-10"), "{msg}");
    }

    #[test]
    fn missing_folder_and_file_are_refused() {
        let dir = Scratch::new("not-a-folder");
        let msg = error_text(locate(&dir.path().join("absent")));
        assert!(msg.contains("cannot open dataset folder"), "{msg}");
        assert!(msg.contains("absent"), "{msg}");
        let file = dir.write("plain-file", b"x");
        let msg = error_text(locate(&file));
        assert!(msg.contains("plain-file is a file, not a dataset folder"), "{msg}");
    }

    #[test]
    fn loads_idx_dataset() {
        let dir = Scratch::new("load-idx");
        let folder = write_idx_set(&dir, "data", true, 12, 5, 3);
        let data = load(&locate(&folder).expect("locate")).expect("load");
        assert_eq!((data.n_train, data.n_test, data.dim), (12, 5, 9));
        assert_eq!(data.train_x, (0..108).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        assert_eq!(data.test_x, (0..45).collect::<Vec<u8>>());
        assert_eq!(data.train_y, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
        assert_eq!(data.test_y, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn image_label_count_mismatch_names_both_files() {
        let dir = Scratch::new("count-mismatch");
        let folder = write_idx_set(&dir, "data", false, 6, 2, 3);
        dir.write("data/train-labels-idx1-ubyte", &labels_bytes(&[1, 2, 3, 4, 5]));
        let msg = error_text(load(&locate(&folder).expect("locate")));
        let images = folder.join("train-images-idx3-ubyte");
        let labels = folder.join("train-labels-idx1-ubyte");
        let expected =
            format!("{} holds 6 images but {} holds 5 labels", images.display(), labels.display());
        assert!(msg.contains(&expected), "{msg}");
    }

    #[test]
    fn train_test_size_mismatch_is_refused() {
        let dir = Scratch::new("size-mismatch");
        let folder = write_idx_set(&dir, "data", false, 4, 2, 3);
        dir.write("data/t10k-images-idx3-ubyte", &images_bytes(2, 4, 4));
        let msg = error_text(load(&locate(&folder).expect("locate")));
        assert!(msg.contains("train-images-idx3-ubyte are 3×3"), "{msg}");
        assert!(msg.contains("t10k-images-idx3-ubyte are 4×4"), "{msg}");
    }

    #[test]
    fn load_passes_on_file_errors() {
        let dir = Scratch::new("load-bad-file");
        let folder = write_idx_set(&dir, "data", false, 4, 2, 3);
        dir.write("data/t10k-labels-idx1-ubyte", &images_bytes(2, 3, 3));
        let msg = error_text(load(&locate(&folder).expect("locate")));
        assert!(msg.contains("t10k-labels-idx1-ubyte has magic number 0x00000803"), "{msg}");
    }

    #[test]
    fn loads_cifar_dataset_concatenating_batches_in_order() {
        let dir = Scratch::new("load-cifar");
        write_cifar_set(&dir, CIFAR_FOLDER);
        let data = load(&locate(dir.path()).expect("locate")).expect("load");
        assert_eq!((data.n_train, data.n_test, data.dim), (15, 2, 3072));
        assert_eq!(data.train_y, [0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4]);
        assert_eq!(data.train_x.len(), 15 * 3072);
        // Record 2 overall is data_batch_2's record 1, whose pixels start at 1.
        assert_eq!(data.train_x[2 * 3072..2 * 3072 + 3], [1, 2, 3]);
        assert_eq!(data.test_y, [3, 4]);
        assert_eq!(data.classes, 5);
        assert_eq!(data.test_x.len(), 2 * 3072);
    }

    #[test]
    fn survey_agrees_with_load_without_reading_pixels() {
        let dir = Scratch::new("survey");
        let idx = write_idx_set(&dir, "idx", true, 12, 5, 3);
        write_cifar_set(&dir, CIFAR_FOLDER);
        for folder in [idx, dir.path().join(CIFAR_FOLDER)] {
            let files = locate(&folder).expect("locate");
            let data = load(&files).expect("load");
            let survey = survey(&files).expect("survey");
            let expected = Survey {
                format: files.format(),
                n_train: data.n_train,
                n_test: data.n_test,
                dim: data.dim,
                classes: data.classes,
            };
            assert_eq!(survey, expected);
        }
    }

    #[test]
    fn labels_must_number_shared_classes() {
        let dir = Scratch::new("labels-classes");
        let folder = write_idx_set(&dir, "data", false, 12, 5, 3);
        let labels = folder.join("t10k-labels-idx1-ubyte");
        dir.write("data/t10k-labels-idx1-ubyte", &labels_bytes(&[0, 1, 200, 3, 4]));
        let files = locate(&folder).expect("locate");
        for msg in [error_text(load(&files)), error_text(survey(&files))] {
            assert!(msg.contains(&format!("{}: test sample 2 has label 200", labels.display())));
            assert!(msg.contains("training labels in"), "{msg}");
            assert!(msg.contains("are 0..=9"), "{msg}");
        }
        dir.write("data/t10k-labels-idx1-ubyte", &labels_bytes(&[0, 1, 2, 3, 4]));
        let mut train: Vec<u8> = (0..12).map(|i| i % 3).collect();
        train[7] = 5;
        dir.write("data/train-labels-idx1-ubyte", &labels_bytes(&train));
        let msg = error_text(survey(&files));
        assert!(msg.contains("training sample 7 has label 5, but no training sample has label 3"));
        dir.write("data/train-labels-idx1-ubyte", &labels_bytes(&[0; 12]));
        let msg = error_text(load(&files));
        assert!(msg.contains("every training label is 0"), "{msg}");
    }

    #[test]
    fn reads_debian_fashion_mnist_when_installed() {
        let dir = Path::new(DEBIAN_FASHION_MNIST);
        if !dir.is_dir() {
            eprintln!(
                "SKIPPED reads_debian_fashion_mnist_when_installed: {DEBIAN_FASHION_MNIST} does not exist \
                 (install the Debian package dataset-fashion-mnist to run this test)"
            );
            return;
        }
        let files = idx_files(locate(dir).expect("locate"));
        assert_eq!(files.train_images, dir.join("train-images-idx3-ubyte.gz"));
        let data = load(&DatasetFiles::Idx(files)).expect("load");
        assert_eq!((data.n_train, data.n_test, data.dim), (60_000, 10_000, 28 * 28));
        assert_eq!(data.train_x.len(), 60_000 * 784);
        assert_eq!(data.test_x.len(), 10_000 * 784);
        assert_eq!(data.train_y[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
        assert_eq!(data.test_y[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
        for (labels, per_class) in [(&data.train_y, 6_000), (&data.test_y, 1_000)] {
            let mut counts = [0usize; 10];
            for &label in labels {
                assert!(label < 10, "label {label}");
                counts[label as usize] += 1;
            }
            assert_eq!(counts, [per_class; 10]);
        }
        let train_sum: u64 = data.train_x.iter().map(|&p| u64::from(p)).sum();
        let test_sum: u64 = data.test_x.iter().map(|&p| u64::from(p)).sum();
        assert_eq!((train_sum, test_sum), (3_431_114_169, 573_469_082));
    }
}
