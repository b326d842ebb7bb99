//! Hostile input (issue #10, "never a crash, never a silent wrong number"): damaged and
//! meaningless datasets, model files and arguments are refused with exit 2 and one sentence naming
//! the file (and the tensor, label or byte), never a panic or a number that is not one. One test
//! per class, fuzzing of the library readers with a fixed seed (each case in `catch_unwind`), and
//! checks of the binary: broken pipes, colour, leftover temporaries.
use crate::common::{
    model_fixture, prunelab, read_safetensors, small_config, stderr, test_dir, tiny_idx_dataset,
    write_idx, write_safetensors,
};
use prunelab::data::images::{self, Normalize};
use prunelab::model::io::{encode_mlp, load_two_layer, save_mlp, save_two_layer, sequential_names};
use prunelab::model::load::{load, LoadOptions};
use prunelab::model::mlp::{Activation, Mlp};
use prunelab::model::torchscript;
use prunelab::model::two_layer::TwoLayer;
use rand::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tch::{Device, Kind, Tensor};

/// Asserts exit 2 and a single `error: ` line holding every one of `needles`, without a panic.
fn assert_refused(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    for needle in needles {
        assert!(err.contains(needle), "{needle:?} not in: {err}");
    }
}

fn error_text<T>(result: anyhow::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// The tiny 16-16-8-3 MLP of the fixtures, with `edit` applied to its tensors, as safetensors.
fn edited_fixture(path: &Path, edit: impl Fn(&mut crate::common::NamedTensors)) {
    let (mut tensors, metadata) = read_safetensors(&model_fixture("tiny-mlp.safetensors"));
    edit(&mut tensors);
    write_safetensors(path, &tensors, &metadata);
}

#[test]
fn dataset_check_reads_the_shape_without_the_pixels() {
    let dir = test_dir("hostile-check");
    tiny_idx_dataset(&dir, 12);
    let info = images::check(&dir, &Normalize::default(), Some(5), None).unwrap();
    assert_eq!((info.dim, info.classes), (16, 3));
    assert_eq!(
        (info.train_available, info.test_available, info.n_train, info.n_test),
        (12, 12, 5, 12)
    );
    let data = images::load(&dir, &Normalize::default(), Some(5), None, Device::Cpu).unwrap();
    assert_eq!((data.dim, data.classes, data.train_x.size()[0]), (16, 3, 5));
}

#[test]
fn datasets_that_are_missing_corrupt_or_disagree_are_refused_naming_the_file() {
    let dir = test_dir("hostile-datasets");
    let check = |d: &Path| error_text(images::check(d, &Normalize::default(), None, None));
    let msg = check(&dir.join("absent"));
    assert!(msg.contains("cannot open dataset folder") && msg.contains("absent"), "{msg}");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    assert!(check(&dir.join("empty")).contains("no dataset found in"));

    let data = dir.join("data");
    tiny_idx_dataset(&data, 12);
    let images_file = data.join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&images_file).unwrap();
    std::fs::write(&images_file, &bytes[..bytes.len() - 3]).unwrap();
    let msg = check(&data);
    assert!(msg.contains(&format!("{} is truncated", images_file.display())), "{msg}");
    std::fs::write(&images_file, &bytes).unwrap();

    let labels = data.join("t10k-labels-idx1-ubyte");
    write_idx(&labels, &[11], &[0; 11]);
    assert!(check(&data).contains("holds 12 images but"), "count mismatch");
    let mut test_labels: Vec<u8> = (0..12).map(|k| k % 3).collect();
    test_labels[9] = 200;
    write_idx(&labels, &[12], &test_labels);
    let expected = format!("{}: test sample 9 has label 200", labels.display());
    assert!(check(&data).contains(&expected), "{}", check(&data));
    let msg = error_text(images::load(&data, &Normalize::default(), None, None, Device::Cpu));
    assert!(msg.contains(&expected), "load must refuse it too: {msg}");

    let tiny_std = Normalize::MeanStd { mean: vec![0.0], std: vec![1e-300] };
    let msg = error_text(images::check(&data, &tiny_std, None, None));
    assert!(
        msg.contains("normalize: every std must be a number from 1e-6 to 1e6 (got 1e-300)"),
        "{msg}"
    );
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor_and_the_count() {
    let dir = test_dir("hostile-nan");
    let path = dir.join("nan.safetensors");
    edited_fixture(&path, |t| {
        let w = t.iter_mut().find(|x| x.0 == "2.weight").unwrap();
        w.2[3] = f32::NAN;
        w.2[5] = f32::INFINITY;
        w.2[7] = f32::NAN;
    });
    let msg = error_text(load(&path, &LoadOptions::default()));
    let expected = "tensor `2.weight` holds 2 NaN and 1 infinite values among its 128 entries";
    assert!(msg.contains(s(&path)) && msg.contains(expected), "{msg}");

    let mut mlp = load(&model_fixture("tiny-mlp.pt"), &LoadOptions::default()).unwrap().mlp;
    mlp.biases[1] = Tensor::full([8], f64::NEG_INFINITY, (Kind::Float, Device::Cpu));
    let pt = dir.join("inf.pt");
    std::fs::write(&pt, torchscript::encode(&mlp).unwrap()).unwrap();
    let msg = error_text(load(&pt, &LoadOptions::default()));
    assert!(msg.contains("tensor `2.bias` holds 0 NaN and 8 infinite values"), "{msg}");

    let two = dir.join("two.safetensors");
    let net = TwoLayer::new(3, 2, vec![0.5, f32::NAN, 1.0, 2.0, 3.0, 4.0], vec![1.0, 1.0]).unwrap();
    save_two_layer(&net, "student", &two).unwrap();
    let msg = error_text(load_two_layer(&two));
    assert!(msg.contains("tensor `w` holds 1 NaN and 0 infinite values among its 6"), "{msg}");

    let data = dir.join("data");
    tiny_idx_dataset(&data, 12);
    let out = prunelab(&dir, &["eval", "--model", s(&path), "--data", s(&data)]);
    assert_refused(&out, &[s(&path), "`2.weight` holds 2 NaN"]);
}

#[test]
fn layers_with_zero_units_or_zero_inputs_are_refused() {
    let dir = test_dir("hostile-zero");
    let units = dir.join("zero-units.safetensors");
    edited_fixture(&units, |t| {
        t.retain(|x| !x.0.starts_with("4."));
        t.push(("4.weight".into(), vec![0, 8], vec![]));
    });
    let msg = error_text(load(&units, &LoadOptions::default()));
    assert!(msg.contains("tensor `4.weight` has shape [0, 8], a Linear layer with zero units"));
    let inputs = dir.join("zero-inputs.safetensors");
    edited_fixture(&inputs, |t| *t = vec![("0.weight".into(), vec![3, 0], vec![])]);
    let out = prunelab(&dir, &["inspect", s(&inputs)]);
    assert_refused(&out, &[s(&inputs), "`0.weight` has shape [3, 0]", "zero inputs"]);
}

/// The byte offset of the first data byte of record `suffix` in a zip archive.
fn record_data(bytes: &[u8], suffix: &str) -> usize {
    let mut at = 0;
    loop {
        let name_len = u16::from_le_bytes([bytes[at + 26], bytes[at + 27]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[at + 28], bytes[at + 29]]) as usize;
        let size = u32::from_le_bytes(bytes[at + 18..at + 22].try_into().unwrap()) as usize;
        let data = at + 30 + name_len + extra_len;
        if bytes[at + 30..at + 30 + name_len].ends_with(suffix.as_bytes()) {
            return data;
        }
        at = data + size;
    }
}

#[test]
fn a_torchscript_archive_with_a_wrong_crc_is_refused() {
    let dir = test_dir("hostile-crc");
    let mut bytes = std::fs::read(model_fixture("tiny-mlp.pt")).unwrap();
    let data = record_data(&bytes, "data/0");
    bytes[data + 5] ^= 0x01; // a weight's lowest mantissa bit: libtorch alone would accept it
    let path = dir.join("flipped.pt");
    std::fs::write(&path, &bytes).unwrap();
    let msg = error_text(load(&path, &LoadOptions::default()));
    let expected = format!("{} is corrupt: record `", path.display());
    assert!(msg.contains(&expected), "{msg}");
    assert!(msg.contains(&format!("data/0` (data at bytes {data}..")), "{msg}");
    assert!(msg.contains("has CRC-32 0x") && msg.contains("but the archive records 0x"), "{msg}");
    let out = prunelab(&dir, &["inspect", s(&path)]);
    assert_refused(&out, &[s(&path), "CRC-32"]);
}

#[test]
fn truncated_safetensors_say_where_they_end() {
    let dir = test_dir("hostile-truncated");
    let whole = std::fs::read(model_fixture("tiny-mlp.safetensors")).unwrap();
    let path = dir.join("cut.safetensors");
    std::fs::write(&path, &whole[..whole.len() - 100]).unwrap();
    let msg = error_text(load(&path, &LoadOptions::default()));
    let end = format!(
        "should end at byte {} but the file ends at byte {}",
        whole.len(),
        whole.len() - 100
    );
    assert!(
        msg.contains(&format!("{} is truncated", path.display())) && msg.contains(&end),
        "{msg}"
    );
    assert!(msg.contains("cutting tensor `"), "{msg}");
    let out = prunelab(&dir, &["inspect", s(&path)]);
    assert_refused(&out, &[s(&path), "is truncated"]);
    std::fs::write(&path, &whole[..20]).unwrap();
    let msg = error_text(load(&path, &LoadOptions::default()));
    assert!(msg.contains("is truncated or corrupt: its first 8 bytes give a"), "{msg}");
}

#[test]
fn safetensors_written_twice_are_the_same_bytes_with_sorted_metadata() {
    let dir = test_dir("hostile-deterministic");
    let mlp = load(&model_fixture("tiny-mlp.safetensors"), &LoadOptions::default()).unwrap().mlp;
    let extra: Vec<(String, String)> =
        (0..12).map(|i| (format!("user.key{}", (i * 7) % 12), i.to_string())).collect();
    let names = sequential_names(3);
    let first = encode_mlp(&mlp, &names, &extra).unwrap();
    for _ in 0..3 {
        assert_eq!(encode_mlp(&mlp, &names, &extra).unwrap(), first);
    }
    let n = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    assert_eq!((8 + n) % 8, 0, "the data start at a multiple of 8");
    let header: serde_json::Value = serde_json::from_slice(&first[8..8 + n]).unwrap();
    let header_text = std::str::from_utf8(&first[8..8 + n]).unwrap();
    let keys: Vec<&String> = header["__metadata__"].as_object().unwrap().keys().collect();
    let positions: Vec<usize> =
        keys.iter().map(|k| header_text.find(&format!("\"{k}\"")).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "metadata keys in sorted order: {header_text}"
    );
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    save_mlp(&mlp, &a).unwrap();
    save_mlp(&mlp, &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let loaded = load(&a, &LoadOptions::default()).unwrap();
    let x = Tensor::ones([2, 16], (Kind::Float, Device::Cpu));
    assert_eq!((loaded.mlp.forward(&x) - mlp.forward(&x)).abs().max().double_value(&[]), 0.0);
}

#[test]
fn stale_temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
    let dir = test_dir("hostile-temporaries");
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let mut live = Command::new("sleep").arg("60").spawn().unwrap();
    let stale = dir.join(format!(".results.csv.tmp-{dead_pid}"));
    let running = dir.join(format!(".model.pt.tmp-{}", live.id()));
    let unrelated = dir.join(".notes.tmp-draft");
    for path in [&stale, &running, &unrelated] {
        std::fs::write(path, b"half-written").unwrap();
    }
    prunelab::files::write_atomic(&dir.join("out.txt"), b"done").unwrap();
    let (stale_exists, running_exists) = (stale.exists(), running.exists());
    live.kill().unwrap();
    live.wait().unwrap();
    assert!(!stale_exists, "the dead process's temporary is removed");
    assert!(
        running_exists && unrelated.exists(),
        "a live process's temporary and other files stay"
    );
    assert_eq!(std::fs::read(dir.join("out.txt")).unwrap(), b"done");
}

#[test]
fn theory_refuses_non_finite_and_out_of_range_arguments_naming_the_flag() {
    let dir = test_dir("hostile-theory");
    let cases: [(&[&str], &str); 7] = [
        (&["theorem1", "--v-star", "NaN"], "--v-star = NaN is out of range"),
        (&["theorem1", "--v-star", "inf"], "--v-star = inf is out of range"),
        (&["random-edge", "--v-star=-inf"], "--v-star = -inf is out of range"),
        (&["random-edge", "--c", "0.5,nan"], "--c: NaN is not a kept fraction"),
        (&["random-edge", "--n", "0"], "--n = 0 is out of range"),
        (&["theorem1", "--m", "0"], "--m = 0 is out of range"),
        (&["random-edge", "--k", "1000000000"], "--k = 1000000000 is out of range"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["theory"];
        full.extend(args);
        assert_refused(&prunelab(&dir, &full), &[expected]);
    }
    let out = prunelab(&dir, &["theory", "random-edge", "--v-star=-3"]);
    assert!(out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("NaN"));
}

#[test]
fn benches_refuse_absurd_sizes_and_missing_data_naming_the_flag() {
    let dir = test_dir("hostile-bench");
    let cases: [(&[&str], &str); 5] = [
        (&["dpp", "--n", "100000000", "--k", "3"], "--n is at most 20000"),
        (&["dpp-edge", "--inputs", "1000000"], "--inputs is at most 20000"),
        (&["dpp-edge", "--units", "1000000", "--layer-units", "1000000"], "--units at most"),
        (&["sgd", "--steps", "0"], "--steps must be at least 10"),
        (&["mlp", "--data", "no-such-folder"], "--data no-such-folder"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["bench"];
        full.extend(args);
        assert_refused(&prunelab(&dir, &full), &[expected]);
    }
}

/// Runs prunelab with stdout a pipe whose reading end is already closed.
fn into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_prunelab"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn broken_pipes_end_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let model = model_fixture("tiny-mlp.safetensors");
    for args in [
        &["inspect", s(&model)][..],
        &["inspect", s(&model), "--json"],
        &["theory", "theorem1", "--m", "3", "--k", "9"],
        &["--help"],
    ] {
        let out = into_closed_pipe(args);
        let quiet = out.status.success() || out.status.signal() == Some(libc::SIGPIPE);
        assert!(quiet, "{args:?}: {:?}", out.status);
        assert_eq!(stderr(&out), "", "{args:?}: nothing on stderr");
    }
}

/// Runs prunelab in `cwd` with stderr on a new pseudo-terminal; returns what it wrote there.
fn with_terminal_stderr(cwd: &Path, args: &[&str], no_color: Option<&str>) -> String {
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the given integers; the other arguments may be
    // null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut command = Command::new(env!("CARGO_BIN_EXE_prunelab"));
    command.args(args).current_dir(cwd).stdout(Stdio::null()).stderr(slave);
    command.env_remove("NO_COLOR").env_remove("RUST_LOG");
    if let Some(value) = no_color {
        command.env("NO_COLOR", value);
    }
    let mut child = command.spawn().unwrap();
    drop(command); // closes this process's copy of the terminal's slave side
    let mut text = Vec::new();
    let mut master = std::fs::File::from(master);
    let mut buf = [0u8; 4096];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    assert!(child.wait().unwrap().success(), "{}", String::from_utf8_lossy(&text));
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn colour_only_on_a_terminal_without_no_color_and_never_in_log_files() {
    assert!(prunelab::logging::colour_wanted(true, None::<&str>));
    assert!(prunelab::logging::colour_wanted(true, Some("")));
    assert!(!prunelab::logging::colour_wanted(true, Some("1")));
    assert!(!prunelab::logging::colour_wanted(false, None::<&str>));
    let dir = test_dir("hostile-colour");
    let config = small_config("exp", "").replace("seeds: [1, 2]", "seeds: [1]");
    std::fs::write(dir.join("exp.yaml"), config).unwrap();
    let run = |out: &str, no_color: Option<&str>| {
        let args = ["run", "exp.yaml", "--out", out, "--device", "cpu", "-v"];
        let text = with_terminal_stderr(&dir, &args, no_color);
        let log = std::fs::read_to_string(dir.join(out).join("exp/log.txt")).unwrap();
        assert!(log.contains("starting") && !log.contains('\x1b'), "log.txt: {log:?}");
        text
    };
    let coloured = run("tty", None);
    assert!(coloured.contains("starting") && has_colour(&coloured), "{coloured:?}");
    let plain = run("no-color", Some("1"));
    assert!(plain.contains("starting") && !has_colour(&plain), "{plain:?}");
    let piped = prunelab(&dir, &["run", "exp.yaml", "--out", "piped", "--device", "cpu", "-v"]);
    let text = stderr(&piped);
    assert!(text.contains("starting") && !text.contains('\x1b'), "{text:?}");
}

/// Whether `text` holds an ANSI colour sequence (SGR: ESC [ digits and semicolons, then `m`);
/// progress bars' cursor movements on a terminal are not colour.
fn has_colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| rest[i..].starts_with('m'))
    })
}

/// `bytes` damaged at random: cut short, or one to four bytes flipped or replaced.
fn mutate(rng: &mut impl Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match rng.gen_range(0..4) {
        0 => out.truncate(rng.gen_range(0..bytes.len())),
        1 => {
            let at = rng.gen_range(0..out.len());
            out[at] ^= 1 << rng.gen_range(0..8);
        }
        2 => {
            for _ in 0..rng.gen_range(1..=4) {
                let at = rng.gen_range(0..out.len());
                out[at] = rng.gen();
            }
        }
        _ => {
            // The headers are where the structure is: aim there too.
            let at = rng.gen_range(0..out.len().min(96));
            out[at] ^= 1 << rng.gen_range(0..8);
        }
    }
    out
}

/// Runs `f` in `catch_unwind`: a panic fails the test, naming the case.
fn no_panic<T>(case: usize, what: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| panic!("case {case} ({what}) panicked"))
}

fn all_finite(t: &Tensor) -> bool {
    t.isfinite().all().int64_value(&[]) == 1
}

#[test]
fn fuzzed_idx_datasets_give_finite_data_or_an_error_naming_the_folder() {
    let dir = test_dir("hostile-fuzz-idx");
    tiny_idx_dataset(&dir, 12);
    let names = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect::<Vec<_>>();
    let originals: Vec<(PathBuf, Vec<u8>)> =
        names.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect();
    let mut rng = prunelab::seed::rng(10, "fuzz-idx");
    let (mut refused, normalize) = (0, Normalize::default());
    for case in 0..1000 {
        let (path, original) = &originals[rng.gen_range(0..originals.len())];
        std::fs::write(path, mutate(&mut rng, original)).unwrap();
        let checked = no_panic(case, "check", || images::check(&dir, &normalize, None, None));
        let loaded =
            no_panic(case, "load", || images::load(&dir, &normalize, None, None, Device::Cpu));
        match (checked, loaded) {
            (Ok(info), Ok(data)) => {
                assert!(all_finite(&data.train_x) && all_finite(&data.test_x), "case {case}");
                let max_label =
                    data.train_y.max().int64_value(&[]).max(data.test_y.max().int64_value(&[]));
                assert!(max_label < data.classes as i64, "case {case}");
                assert_eq!((info.dim, info.classes), (data.dim, data.classes), "case {case}");
                assert_eq!(info.n_test, data.test_x.size()[0] as usize, "case {case}");
            }
            (Err(a), Err(b)) => {
                refused += 1;
                for msg in [format!("{a:#}"), format!("{b:#}")] {
                    assert!(msg.contains(s(&dir)), "case {case}: {msg}");
                }
            }
            (a, b) => {
                panic!("case {case}: check and load disagree: {:?} vs {:?}", a.err(), b.err())
            }
        }
        std::fs::write(path, original).unwrap();
    }
    assert!(refused > 300, "most damage is noticed ({refused} of 1000)");
}

/// Loads a damaged copy of `fixture` `cases` times; each gives finite weights or an error naming
/// the file. Returns how many were refused.
fn fuzz_model(fixture: &[u8], path: &Path, cases: usize, seed: u64) -> usize {
    let mut rng = prunelab::seed::rng(seed, "fuzz-model");
    let mut refused = 0;
    for case in 0..cases {
        std::fs::write(path, mutate(&mut rng, fixture)).unwrap();
        match no_panic(case, "load", || load(path, &LoadOptions::default())) {
            Ok(model) => {
                let tensors = model.mlp.weights.iter().chain(&model.mlp.biases);
                assert!(tensors.clone().all(all_finite), "case {case}: non-finite weights");
                assert!(model.mlp.sizes().iter().all(|&n| n > 0), "case {case}");
            }
            Err(e) => {
                refused += 1;
                let msg = format!("{e:#}");
                assert!(msg.contains(s(path)), "case {case}: {msg}");
            }
        }
    }
    refused
}

#[test]
fn fuzzed_safetensors_give_finite_weights_or_an_error_naming_the_file() {
    let dir = test_dir("hostile-fuzz-safetensors");
    let fixture = std::fs::read(model_fixture("tiny-mlp.safetensors")).unwrap();
    let refused = fuzz_model(&fixture, &dir.join("m.safetensors"), 1000, 11);
    assert!(refused > 300, "most damage is noticed ({refused} of 1000)");

    let net = TwoLayer::gaussian(20, 3, None, &mut prunelab::seed::rng(1, "fuzz-two"));
    let path = dir.join("student.safetensors");
    save_two_layer(&net, "student", &path).unwrap();
    let fixture = std::fs::read(&path).unwrap();
    let mut rng = prunelab::seed::rng(12, "fuzz-two-layer");
    for case in 0..300 {
        std::fs::write(&path, mutate(&mut rng, &fixture)).unwrap();
        match no_panic(case, "load_two_layer", || load_two_layer(&path)) {
            Ok(net) => assert!(net.w.iter().chain(&net.v).all(|x| x.is_finite()), "case {case}"),
            Err(e) => assert!(format!("{e:#}").contains(s(&path)), "case {case}: {e:#}"),
        }
    }
}

#[test]
fn fuzzed_torchscript_gives_finite_weights_or_an_error_naming_the_file() {
    let dir = test_dir("hostile-fuzz-torchscript");
    let fixture = std::fs::read(model_fixture("tiny-mlp.pt")).unwrap();
    let refused = fuzz_model(&fixture, &dir.join("m.pt"), 1000, 13);
    assert!(refused > 300, "most damage is noticed ({refused} of 1000)");
    let mlp =
        Mlp::xavier(&[5, 4, 3], Activation::Relu, &mut prunelab::seed::rng(2, "f"), Device::Cpu)
            .unwrap();
    let refused = fuzz_model(&torchscript::encode(&mlp).unwrap(), &dir.join("relu.pt"), 200, 14);
    assert!(refused > 50, "{refused} of 200");
}

/// Every shipped config, truncated or with bytes flipped at random positions (1,000 cases, fixed
/// seed): parsing, planning and the plan-time checks give a result or an error, never a panic.
#[test]
fn damaged_yaml_configs_are_refused_or_accepted_never_a_panic() {
    let mut configs: Vec<PathBuf> = vec![crate::common::root().join("configs/quickstart.yaml")];
    let paper = crate::common::root().join("configs/paper");
    configs.extend(std::fs::read_dir(paper).unwrap().map(|e| e.unwrap().path()));
    configs.sort();
    let mut rng = prunelab::seed::rng(11, "yaml-fuzz");
    let mut refused = 0;
    for case in 0..1000 {
        let mut bytes = std::fs::read(&configs[case % configs.len()]).unwrap();
        if case % 3 == 0 {
            bytes.truncate(rng.gen_range(0..bytes.len()));
        } else {
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..bytes.len());
                bytes[at] = rng.gen();
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let experiment = prunelab::config::parse(&text)?;
            let plan = prunelab::experiment::plan::plan(&experiment)?;
            // Datasets are not read here (the paths are relative); sizes and budgets are.
            if experiment.task.teacher_student.is_some() {
                prunelab::experiment::cost::check(&plan, Some(1e12))?;
            }
            anyhow::Ok(())
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                refused += 1;
                assert!(!format!("{err:#}").is_empty());
            }
            Err(_) => panic!("case {case}: a damaged config made prunelab panic:\n{text}"),
        }
    }
    assert!(refused > 100, "only {refused} of 1000 damaged configs were refused");
}
