//! Helpers shared by the integration tests: a fresh folder per test and the prunelab binary.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh, empty folder for one test: `<tmp>/prunelab-tests/<name>-<pid>`.
pub fn test_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join("prunelab-tests").join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Runs the prunelab binary with `args` in `cwd`.
pub fn prunelab(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prunelab"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run prunelab")
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The project root (for configs/).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A small teacher-student config (N=50, M=2, K=4) with `extra` lines appended under teacher_student.
pub fn small_config(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\nseeds: [1, 2]\ntask:\n  teacher_student:\n    input_dim: 50\n    teacher_hidden: 2\n    \
         student_hidden: 4\n    train_steps: 20000\n    test_samples: 5000\n    lr: 0.5\n{extra}"
    )
}

pub fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

use prunelab::data::teacher::TeacherStream;
use prunelab::model::two_layer::TwoLayer;
use prunelab::train::online::{self, Engine};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The paper's student (N=500, M=2, K=6, v*=4, η=0.5, 800k steps) and its teacher for `seed` and
/// label noise `noise`, trained once per test binary and shared between tests.
pub fn paper_student(seed: u64, noise: f32) -> Arc<(TwoLayer, TwoLayer)> {
    type Slot = Arc<OnceLock<Arc<(TwoLayer, TwoLayer)>>>;
    static CACHE: OnceLock<Mutex<HashMap<(u64, u32), Slot>>> = OnceLock::new();
    let slot = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry((seed, noise.to_bits()))
        .or_default()
        .clone();
    slot.get_or_init(|| {
        let teacher =
            TwoLayer::gaussian(500, 2, Some(4.0), &mut prunelab::seed::rng(seed, "teacher"));
        let mut student =
            TwoLayer::gaussian(500, 6, None, &mut prunelab::seed::rng(seed, "student"));
        let mut stream = TeacherStream::new(&teacher, noise, prunelab::seed::rng(seed, "train"));
        online::train(&mut student, &mut stream, 800_000, 0.5, Engine::Fused, |_, _| {}).unwrap();
        Arc::new((student, teacher))
    })
    .clone()
}

/// Writes an IDX file (raw): magic 2051 images [n, rows, cols] or 2049 labels [n].
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let magic: u32 = if dims.len() == 3 { 2051 } else { 2049 };
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// A tiny MNIST-format dataset folder: `n` 4×4 images per split, pixel i of image k = (7k + 13i) mod 256,
/// label k mod 3.
pub fn tiny_idx_dataset(dir: &Path, n: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let pixels: Vec<u8> = (0..n * 16).map(|j| ((j / 16) * 7 + (j % 16) * 13) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|k| (k % 3) as u8).collect();
    for split in ["train", "t10k"] {
        write_idx(&dir.join(format!("{split}-images-idx3-ubyte")), &[n, 4, 4], &pixels);
        write_idx(&dir.join(format!("{split}-labels-idx1-ubyte")), &[n], &labels);
    }
}

/// Debian's Fashion-MNIST folder, or None after saying loudly why the caller skips.
pub fn fashion_mnist(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(prunelab::data::dataset_dir::DEBIAN_FASHION_MNIST);
    if dir.join("train-images-idx3-ubyte.gz").exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED {test}: {} is missing (apt-get install dataset-fashion-mnist; `make test` installs it)", dir.display());
        None
    }
}

/// The committed model fixtures (`cargo run --release --example make_fixtures` writes them).
pub fn model_fixture(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// The tensors of a safetensors file: (name, shape, f32 values), and its metadata.
pub type NamedTensors = Vec<(String, Vec<usize>, Vec<f32>)>;

/// Reads a safetensors file of f32 tensors.
pub fn read_safetensors(path: &Path) -> (NamedTensors, HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: NamedTensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = safetensors::SafeTensors::read_metadata(&bytes)
        .unwrap()
        .1
        .metadata()
        .clone()
        .unwrap_or_default();
    (tensors, metadata)
}

/// Writes f32 tensors (and metadata) as a safetensors file.
pub fn write_safetensors(path: &Path, tensors: &NamedTensors, metadata: &HashMap<String, String>) {
    let bytes: Vec<Vec<u8>> =
        tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::tensor::Dtype::F32,
                shape.clone(),
                b,
            )
            .unwrap();
            (name.as_str(), view)
        })
        .collect();
    let metadata = (!metadata.is_empty()).then(|| metadata.clone());
    std::fs::write(path, safetensors::tensor::serialize(views, &metadata).unwrap()).unwrap();
}

/// The names of the files in `dir` (sorted), to check that a failed command wrote nothing.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
