//! Existing models in and out: TorchScript and safetensors round trips, `prunelab prune` (every
//! method, masked and compacted), `eval`, `inspect`, and every refusal (exit 2, one sentence naming
//! the file and the tensor, nothing written). Fixtures: `models/` (see examples/make_fixtures.rs).
use crate::common::{
    files_in, model_fixture, prunelab, read_safetensors, stderr, test_dir, tiny_idx_dataset,
    write_safetensors,
};
use prunelab::data::images::{NamedNormalize, Normalize};
use prunelab::model::io::{encode_mlp, save_mlp};
use prunelab::model::load::{load, ActivationSource, LoadOptions, ModelFormat};
use prunelab::model::mlp::{Activation, Mlp};
use prunelab::model::torchscript;
use prunelab::prune::dpp::kernel::KernelKind;
use prunelab::prune::layer::{compact, Layer, LayerPruner, NodeRemoval, Options};
use prunelab::prune::stats::LayerStats;
use prunelab::prune::Mask;
use prunelab::seed;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Tensor};

fn inputs(n: i64, dim: i64) -> Tensor {
    let values: Vec<f32> = (0..n * dim).map(|i| ((i as f32) * 0.731).sin() * 2.0).collect();
    Tensor::from_slice(&values).view([n, dim])
}

fn max_diff(a: &Mlp, b: &Mlp, x: &Tensor) -> f64 {
    (a.forward(x) - b.forward(x)).abs().max().double_value(&[])
}

fn load_plain(path: &Path) -> prunelab::model::load::LoadedModel {
    load(path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

#[test]
fn torchscript_and_safetensors_round_trips_give_identical_outputs() {
    let dir = test_dir("models-round-trip");
    let x = inputs(64, 12);
    for activation in [Activation::Sigmoid, Activation::Relu, Activation::Tanh] {
        let mlp =
            Mlp::xavier(&[12, 9, 7, 4], activation, &mut seed::rng(5, "rt"), Device::Cpu).unwrap();
        let mlp = Mlp { biases: mlp.biases.iter().map(|b| b.rand_like() - 0.5).collect(), ..mlp };
        // prunelab → TorchScript → prunelab (activation found from the module's forward).
        let pt = dir.join("m.pt");
        std::fs::write(&pt, torchscript::encode(&mlp).unwrap()).unwrap();
        let back = load_plain(&pt);
        assert_eq!(back.format, ModelFormat::TorchScript);
        assert_eq!(back.activation, ActivationSource::Matched);
        assert_eq!(back.mlp.activation, activation);
        assert_eq!(back.forward_check.unwrap().max_abs_diff, 0.0);
        assert_eq!(max_diff(&back.mlp, &mlp, &x), 0.0, "{activation:?}");
        let names: Vec<&str> = back.layers.iter().map(|l| l.weight.as_str()).collect();
        assert_eq!(names, ["0.weight", "2.weight", "4.weight"]);
        // prunelab → safetensors → prunelab (activation from the metadata).
        let st = dir.join("m.safetensors");
        save_mlp(&mlp, &st).unwrap();
        let back = load_plain(&st);
        assert_eq!(
            (back.format, back.activation),
            (ModelFormat::Safetensors, ActivationSource::Metadata)
        );
        assert_eq!(max_diff(&back.mlp, &mlp, &x), 0.0, "{activation:?}");
        // TorchScript → safetensors → TorchScript again.
        std::fs::write(&pt, torchscript::encode(&back.mlp).unwrap()).unwrap();
        assert_eq!(max_diff(&load_plain(&pt).mlp, &mlp, &x), 0.0);
    }
}

#[test]
fn state_dicts_with_pytorch_names_are_understood_and_keep_their_names() {
    let dir = test_dir("models-names");
    let mlp = Mlp::xavier(&[12, 9, 4], Activation::Relu, &mut seed::rng(6, "names"), Device::Cpu)
        .unwrap();
    let x = inputs(32, 12);
    // fc1 with a bias, fc2 without (nn.Linear(bias=False)), no metadata from prunelab.
    let mut no_bias = mlp.clone();
    no_bias.biases[1] = no_bias.biases[1].zeros_like();
    let names = [
        ("fc1.weight".to_string(), Some("fc1.bias".to_string())),
        ("fc2.weight".to_string(), None),
    ];
    let path = dir.join("fc.safetensors");
    std::fs::write(&path, encode_mlp(&no_bias, &names, &[]).unwrap()).unwrap();
    let (tensors, _) = read_safetensors(&path);
    let stored: Vec<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        stored,
        ["fc1.bias", "fc1.weight", "fc2.weight"],
        "a zero bias of a bias-free layer stays out"
    );
    write_safetensors(&path, &tensors, &HashMap::new());
    let model = load_plain(&path);
    assert_eq!(model.activation, ActivationSource::Unknown);
    assert!(model.require_activation().unwrap_err().to_string().contains("--activation"));
    let model =
        load(&path, &LoadOptions { activation: Some(Activation::Relu), check_inputs: None })
            .unwrap();
    assert_eq!(model.layers[1].bias, None);
    assert_eq!(model.layer_index("fc2").unwrap(), 1);
    assert_eq!(model.layer_index("w1").unwrap(), 0);
    assert!(model.layer_index("fc9").unwrap_err().to_string().contains("`fc1`, `fc2`"));
    assert_eq!(max_diff(&model.mlp, &no_bias, &x), 0.0);
}

#[test]
fn the_fixtures_are_the_same_network_in_both_formats() {
    let pt = load_plain(&model_fixture("tiny-mlp.pt"));
    let st = load_plain(&model_fixture("tiny-mlp.safetensors"));
    assert_eq!(pt.mlp.sizes(), [16, 16, 8, 3]);
    assert_eq!((pt.mlp.activation, st.mlp.activation), (Activation::Sigmoid, Activation::Sigmoid));
    assert_eq!(max_diff(&pt.mlp, &st.mlp, &inputs(50, 16)), 0.0);
    for name in ["tiny-mlp.pt", "tiny-mlp.safetensors", "not-an-mlp.pt", "traced-function.pt"] {
        assert!(std::fs::metadata(model_fixture(name)).unwrap().len() < 100_000, "{name}");
    }
}

#[test]
fn eval_and_inspect_report_what_the_library_computes() {
    let dir = test_dir("models-eval");
    tiny_idx_dataset(&dir.join("data"), 60);
    let data = prunelab::data::images::load(
        &dir.join("data"),
        &Default::default(),
        None,
        None,
        Device::Cpu,
    )
    .unwrap();
    let mlp = load_plain(&model_fixture("tiny-mlp.pt")).mlp;
    let expected = mlp.error_rate(&data.test_x, &data.test_y);
    for fixture in ["tiny-mlp.pt", "tiny-mlp.safetensors"] {
        let model = model_fixture(fixture);
        let report = json(&prunelab(
            &dir,
            &["eval", "--model", model.to_str().unwrap(), "--data", "data", "--json"],
        ));
        assert_eq!(report["test_error"].as_f64().unwrap(), expected, "{fixture}");
        assert_eq!(report["test_samples"], 60);
        assert_eq!(
            (report["params_total"].as_u64(), report["params_nonzero"].as_u64()),
            (Some(435), Some(435))
        );
        assert_eq!(report["activation"], "sigmoid");
        let text = prunelab(&dir, &["eval", "--model", model.to_str().unwrap(), "--data", "data"]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("test error"), "{}", stderr(&text));
    }
    let report = json(&prunelab(
        &dir,
        &["inspect", model_fixture("tiny-mlp.pt").to_str().unwrap(), "--json"],
    ));
    assert_eq!(report["format"], "torchscript");
    assert_eq!(report["sizes"], serde_json::json!([16, 16, 8, 3]));
    assert_eq!(report["layers"][1]["shape"], serde_json::json!([8, 16]));
    assert_eq!(report["layers"][1]["params"], 136);
    assert_eq!(report["activation_source"], "matched");
    // --normalize is the preprocessing the library applies; a wrong channel count is refused.
    let raw = Normalize::Named(NamedNormalize::None);
    let data =
        prunelab::data::images::load(&dir.join("data"), &raw, None, None, Device::Cpu).unwrap();
    let none = json(&prunelab(
        &dir,
        &[
            "eval",
            "--model",
            model_fixture("tiny-mlp.pt").to_str().unwrap(),
            "--data",
            "data",
            "--json",
            "--normalize",
            "none",
        ],
    ));
    assert_eq!(none["test_error"].as_f64().unwrap(), mlp.error_rate(&data.test_x, &data.test_y));
    let out = prunelab(
        &dir,
        &[
            "eval",
            "--model",
            model_fixture("tiny-mlp.pt").to_str().unwrap(),
            "--data",
            "data",
            "--normalize",
            "0.5,0.5,0.5,1,1,1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("3 values given for 1 channel"), "{}", stderr(&out));
}

#[test]
fn compacting_removes_units_and_keeps_the_function() {
    tch::manual_seed(7);
    let model = load_plain(&model_fixture("tiny-mlp.pt"));
    let x = inputs(200, 16);
    let options = Options {
        node_kernel: KernelKind::Rbf { beta: 1e-3, epsilon: 0.01 },
        edge_kernel: KernelKind::Rbf { beta: 0.5, epsilon: 0.01 },
        node_removal: NodeRemoval::FoldBias,
        ..Options::default()
    };
    for index in [0, 1] {
        let layer = Layer::of_mlp(&model.mlp, index).unwrap();
        let stats = LayerStats::calibrate(&model.mlp, index, &x, false, false).unwrap();
        let pruner = LayerPruner::new(&layer, &stats, options, "w").unwrap();
        let kept = vec![0, 3, 4, 6];
        let layer = index;
        for reweight in [false, true] {
            let masked = pruner
                .pruned(&Mask::Nodes(kept.clone()), reweight)
                .unwrap()
                .into_mlp(&model.mlp, layer);
            let small = compact(&masked, layer, &kept).unwrap();
            assert_eq!(small.weights[layer].size()[0], 4);
            assert_eq!(small.weights[layer + 1].size()[1], 4);
            assert_eq!(small.params_nonzero(), masked.params_nonzero());
            let diff = max_diff(&small, &masked, &x);
            assert!(diff < 1e-5, "layer {layer} reweight {reweight}: {diff}");
        }
    }
    assert!(compact(&model.mlp, 2, &[0]).unwrap_err().to_string().contains("output layer"));
    assert!(compact(&model.mlp, 0, &[3, 1]).is_err());
}

#[test]
fn prune_writes_masked_and_compacted_models_that_load_back() {
    let dir = test_dir("models-prune");
    tiny_idx_dataset(&dir.join("data"), 60);
    let input = model_fixture("tiny-mlp.pt");
    let base = [
        "prune",
        "--model",
        input.to_str().unwrap(),
        "--method",
        "dpp_node",
        "--keep",
        "0.5",
        "--reweight",
        "--calib",
        "data",
        "--data",
        "data",
    ];
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = prunelab(&dir, &args);
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = run(&["--out", "masked.pt", "--out", "masked.safetensors"]);
    assert!(report.contains("10 of 16 units kept") && report.contains("test error"), "{report}");
    let report = run(&["--compact", "--out", "small.pt", "--out", "small.safetensors"]);
    assert!(report.contains("compacted   outputs equal the masked network's"), "{report}");
    let x = inputs(100, 16);
    let masked = load_plain(&dir.join("masked.pt"));
    let small = load_plain(&dir.join("small.pt"));
    assert_eq!(masked.mlp.sizes(), [16, 16, 8, 3]);
    assert_eq!(small.mlp.sizes(), [16, 10, 8, 3]);
    // Equal up to f32 rounding (DIVNET on 60 samples makes large weights: outputs up to ~30).
    let scale = masked.mlp.forward(&x).abs().max().double_value(&[]).max(1.0);
    let diff = max_diff(&masked.mlp, &small.mlp, &x);
    assert!(diff < 1e-5 * scale, "{diff} (outputs up to {scale})");
    for (st, pt) in [("masked.safetensors", &masked), ("small.safetensors", &small)] {
        let st = load_plain(&dir.join(st));
        assert_eq!(max_diff(&st.mlp, &pt.mlp, &x), 0.0);
        assert_eq!(st.metadata["prunelab.method"], "dpp_node");
        assert_eq!(st.metadata["prunelab.pruned_from"], "tiny-mlp.pt");
    }
    let inspect = json(&prunelab(&dir, &["inspect", "masked.pt", "--json"]));
    assert_eq!(inspect["layers"][0]["empty_units"], 6);
    assert_eq!(inspect["params_total"], 435);
    let inspect = json(&prunelab(&dir, &["inspect", "small.safetensors", "--json"]));
    assert_eq!(inspect["params_total"], 10 * 17 + 8 * 11 + 3 * 9);
    // The same seed gives the same model.
    run(&["--out", "again.pt"]);
    assert_eq!(
        std::fs::read(dir.join("again.pt")).unwrap(),
        std::fs::read(dir.join("masked.pt")).unwrap()
    );
    assert!(!files_in(&dir).iter().any(|f| f.contains(".tmp-")), "{:?}", files_in(&dir));
}

#[test]
fn every_method_prunes_to_its_budget() {
    let dir = test_dir("models-methods");
    tiny_idx_dataset(&dir.join("data"), 60);
    let input = model_fixture("tiny-mlp.safetensors");
    // keep 0.5 of layer 2 (8 units × 16 inputs, next layer 3): 8 inputs per unit, or
    // ⌊8·(8 + 3)/(16 + 3)⌋ = 4 units.
    for method in
        ["random_node", "importance_node", "dpp_node", "random_edge", "importance_edge", "dpp_edge"]
    {
        for reweight in [false, true] {
            let out = format!("{method}-{reweight}.safetensors");
            let mut args = vec![
                "prune",
                "--model",
                input.to_str().unwrap(),
                "--method",
                method,
                "--keep",
                "0.5",
                "--layer",
                "2",
                "--calib",
                "data",
                "--out",
                &out,
            ];
            if reweight {
                args.push("--reweight");
            }
            let result = prunelab(&dir, &args);
            assert!(result.status.success(), "{method} {reweight}: {}", stderr(&result));
            let (tensors, _) = read_safetensors(&dir.join(&out));
            let w = tensors.iter().find(|t| t.0 == "2.weight").unwrap();
            let rows_nonzero: Vec<usize> =
                w.2.chunks(16).map(|r| r.iter().filter(|v| **v != 0.0).count()).collect();
            if method.ends_with("_node") {
                assert_eq!(
                    rows_nonzero.iter().filter(|&&c| c > 0).count(),
                    4,
                    "{method}: {rows_nonzero:?}"
                );
            } else {
                assert!(rows_nonzero.iter().all(|&c| c == 8), "{method}: {rows_nonzero:?}");
            }
        }
    }
}

#[test]
fn all_hidden_layers_are_pruned_in_order_and_fine_tuning_keeps_the_masks() {
    let dir = test_dir("models-whole");
    tiny_idx_dataset(&dir.join("data"), 60);
    let input = model_fixture("tiny-mlp.pt");
    let run = |method: &str, extra: &[&str]| {
        let mut args = vec![
            "prune",
            "--model",
            input.to_str().unwrap(),
            "--method",
            method,
            "--keep",
            "0.5",
            "--calib",
            "data",
            "--data",
            "data",
        ];
        args.extend(extra);
        let out = prunelab(&dir, &args);
        assert!(out.status.success(), "{method} {extra:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let tensor = |file: &str, name: &str| -> Vec<f32> {
        let (tensors, _) = read_safetensors(&dir.join(file));
        tensors.into_iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("{name}")).2
    };
    // 16-16-8-3: layer `0` keeps ⌊16(8 + 8)/(16 + 8)⌋ = 10 units, layer `2` ⌊8(8 + 3)/19⌋ = 4.
    let report =
        run("dpp_node", &["--layer", "all", "--out", "a.safetensors", "--masks", "m.safetensors"]);
    assert!(
        report.contains("10 of 16 units kept") && report.contains("4 of 8 units kept"),
        "{report}"
    );
    assert!(report.contains("of the pruned layers' weights (allocation uniform)"), "{report}");
    let listed = run("dpp_node", &["--layer", "0,2", "--out", "b.safetensors"]);
    assert_eq!(tensor("a.safetensors", "2.weight"), tensor("b.safetensors", "2.weight"));
    assert!(listed.contains("4 of 8 units kept"), "{listed}");
    // Layer `2` lost the columns of layer `0`'s removed units and its own rows: its mask is both.
    let mask = tensor("m.safetensors", "2.weight_mask");
    let kept_rows = mask.chunks(16).filter(|r| r.iter().any(|&v| v != 0.0)).count();
    let kept_cols = (0..16).filter(|&c| mask.chunks(16).any(|r| r[c] != 0.0)).count();
    assert_eq!((kept_rows, kept_cols), (4, 10));
    // Fine-tuning: every masked weight exactly 0, the kept ones changed, the error recorded.
    for method in ["random_edge", "importance_node"] {
        let (masked, tuned, masks) = (
            format!("{method}.safetensors"),
            format!("{method}-ft.safetensors"),
            format!("{method}-m.safetensors"),
        );
        run(method, &["--layer", "all", "--out", &masked]);
        let report = run(
            method,
            &[
                "--layer",
                "all",
                "--finetune-epochs",
                "2",
                "--finetune-lr",
                "0.05",
                "--out",
                &tuned,
                "--masks",
                &masks,
            ],
        );
        assert!(
            report.contains("fine-tuned  epoch 2: loss") && report.contains("% fine-tuned"),
            "{report}"
        );
        for layer in ["0", "2", "4"] {
            let weight = format!("{layer}.weight");
            let Some(mask) = read_safetensors(&dir.join(&masks))
                .0
                .into_iter()
                .find(|t| t.0 == format!("{weight}_mask"))
            else {
                assert!(
                    method.ends_with("_edge") && layer != "0",
                    "{method}: no mask for {weight}"
                );
                continue;
            };
            let (before, after) = (tensor(&masked, &weight), tensor(&tuned, &weight));
            let mut changed = 0;
            for ((m, b), a) in mask.2.iter().zip(&before).zip(&after) {
                if *m == 0.0 {
                    assert_eq!(*a, 0.0, "{method} {weight}: a masked weight moved");
                } else if a != b {
                    changed += 1;
                }
            }
            assert!(changed > 0, "{method} {weight}: fine-tuning changed no kept weight");
        }
    }
    // The global ranking gives importance_edge per-layer shares that need not be uniform.
    let report = run(
        "importance_edge",
        &["--layer", "all", "--allocation", "scores", "--out", "s.safetensors"],
    );
    assert!(report.contains("(allocation scores)"), "{report}");
}

#[test]
fn bad_models_and_options_are_refused_with_exit_2_and_nothing_written() {
    let dir = test_dir("models-refused");
    tiny_idx_dataset(&dir.join("data"), 30);
    std::fs::write(dir.join("corrupt.pt"), b"this is not a model at all, just some text").unwrap();
    let whole = std::fs::read(model_fixture("tiny-mlp.pt")).unwrap();
    std::fs::write(dir.join("truncated.pt"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.safetensors"), b"").unwrap();
    let (tensors, metadata) = read_safetensors(&model_fixture("tiny-mlp.safetensors"));
    let variant = |name: &str, edit: &dyn Fn(&mut crate::common::NamedTensors)| {
        let mut t = tensors.clone();
        edit(&mut t);
        write_safetensors(&dir.join(name), &t, &metadata);
    };
    variant("missing-weight.safetensors", &|t| t.retain(|x| x.0 != "2.weight"));
    variant("missing-layer.safetensors", &|t| t.retain(|x| !x.0.starts_with("2.")));
    variant("mismatched.safetensors", &|t| {
        let w = t.iter_mut().find(|x| x.0 == "2.weight").unwrap();
        w.1 = vec![8, 12];
        w.2.truncate(96);
    });
    variant("bad-bias.safetensors", &|t| {
        let b = t.iter_mut().find(|x| x.0 == "0.bias").unwrap();
        b.1 = vec![15];
        b.2.truncate(15);
    });
    variant("conv.safetensors", &|t| {
        t.push(("conv.weight".into(), vec![4, 1, 2, 2], vec![0.0; 16]))
    });
    variant("batchnorm.safetensors", &|t| {
        t.push(("0.running_mean".into(), vec![16], vec![0.0; 16]))
    });
    let mut no_metadata = metadata.clone();
    no_metadata.remove("prunelab.activation");
    write_safetensors(&dir.join("no-activation.safetensors"), &tensors, &no_metadata);
    let fixture = |name: &str| model_fixture(name).to_str().unwrap().to_string();
    let tiny = fixture("tiny-mlp.pt");

    let prune = |model: &str, extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> =
            ["prune", "--model", model, "--method", "importance_node", "--keep", "0.5"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--out", "out/o.pt", "--out", "out/o.safetensors"].map(String::from));
        args
    };
    let replace = |args: Vec<String>, from: &str, to: &str| -> Vec<String> {
        args.into_iter().map(|a| if a == from { to.to_string() } else { a }).collect()
    };
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        ("corrupt file", prune("corrupt.pt", &[]), "corrupt.pt is neither a TorchScript archive (torch.jit.save) nor a safetensors file"),
        ("truncated TorchScript", prune("truncated.pt", &[]), "truncated.pt: libtorch cannot load this TorchScript file"),
        ("empty file", prune("empty.safetensors", &[]), "empty.safetensors is empty"),
        ("missing file", prune("nowhere.pt", &[]), "reading nowhere.pt"),
        ("non-MLP TorchScript", prune(&fixture("not-an-mlp.pt"), &[]), "not-an-mlp.pt: the module's forward is not the chain of Linear layers 0 → 2 → 4"),
        ("traced function", prune(&fixture("traced-function.pt"), &[]), "traced-function.pt: the TorchScript module has no parameters"),
        ("missing weight", prune("missing-weight.safetensors", &[]), "missing-weight.safetensors: tensor `2.bias` has no matching weight `2.weight`"),
        ("missing layer", prune("missing-layer.safetensors", &[]), "missing-layer.safetensors: tensor `4.weight` has shape [3, 8]: it takes 8 inputs, but the layer before it, `0.weight` [16, 16], has 16 outputs"),
        ("mismatched shape", prune("mismatched.safetensors", &[]), "mismatched.safetensors: tensor `2.weight` has shape [8, 12]: it takes 12 inputs"),
        ("bias shape", prune("bad-bias.safetensors", &[]), "bad-bias.safetensors: tensor `0.bias` has shape [15], but `0.weight` [16, 16] has 16 outputs"),
        ("convolution", prune("conv.safetensors", &[]), "conv.safetensors: tensor `conv.weight` has shape [4, 1, 2, 2], a convolution kernel"),
        ("other tensors", prune("batchnorm.safetensors", &[]), "batchnorm.safetensors: tensor `0.running_mean` has no `0.running_var` beside it"),
        ("unknown activation", prune("no-activation.safetensors", &[]), "no-activation.safetensors: the activation between the layers is not recorded"),
        ("TorchScript with another activation", prune(&tiny, &["--activation", "relu"]), "with --activation relu: outputs differ"),
        ("compact with an edge method", replace(prune(&tiny, &["--compact"]), "importance_node", "random_edge"), "--compact removes whole units, but random_edge keeps every unit"),
        ("DPP without --calib", replace(prune(&tiny, &[]), "importance_node", "dpp_edge"), "dpp_edge builds its DPP kernel from the layer's inputs: give calibration data with --calib DATA"),
        ("reweight without --calib", prune(&tiny, &["--reweight"]), "--reweight regresses on the layer's activations: give calibration data with --calib DATA"),
        ("keep 0", replace(prune(&tiny, &[]), "0.5", "0"), "`0` is not a kept fraction in (0, 1]"),
        ("keep 1.5", replace(prune(&tiny, &[]), "0.5", "1.5"), "`1.5` is not a kept fraction in (0, 1]"),
        ("unknown method", replace(prune(&tiny, &[]), "importance_node", "magnitude"), "unknown method `magnitude`: use random_node, importance_node, dpp_node, random_edge, importance_edge, dpp_edge"),
        ("output layer", prune(&tiny, &["--layer", "4"]), "layer `4` of"),
        ("unknown layer", prune(&tiny, &["--layer", "fc1"]), "--layer fc1:"),
        ("output layer in a list", prune(&tiny, &["--layer", "0,4"]), "layer `4` of"),
        ("a layer twice", prune(&tiny, &["--layer", "0", "--layer", "w1"]), "layer `0` is named twice"),
        ("all and a layer", prune(&tiny, &["--layer", "all,0"]), "--layer all already names every hidden layer"),
        ("scores for a random method", replace(prune(&tiny, &["--layer", "all", "--allocation", "scores"]), "importance_node", "random_node"), "allocation `scores` shares the budget out by a global ranking of importance scores, which random_node does not have"),
        ("unknown allocation", prune(&tiny, &["--allocation", "greedy"]), "unknown allocation `greedy`: use uniform or scores"),
        ("fine-tuning without --data", prune(&tiny, &["--finetune-epochs", "1"]), "the following required arguments were not provided"),
        ("fine-tuning 0 epochs", prune(&tiny, &["--finetune-epochs", "0", "--data", "data"]), "--finetune-epochs 0 fine-tunes nothing"),
        ("fine-tuning lr 0", prune(&tiny, &["--finetune-epochs", "1", "--data", "data", "--finetune-lr", "0"]), "--finetune-lr must be a finite number > 0"),
        ("unknown output format", replace(prune(&tiny, &[]), "out/o.safetensors", "out/o.onnx"), "unknown model format `onnx`"),
        ("calibration data of another width", prune(&fixture("tiny-mlp.pt"), &["--calib", "wide"]), "wide has 25-dimensional inputs, but"),
        ("missing data folder", prune(&tiny, &["--data", "nowhere"]), "nowhere"),
    ];
    std::fs::create_dir_all(dir.join("out")).unwrap();
    // 25-dimensional images for the width mismatch.
    let wide = dir.join("wide");
    std::fs::create_dir_all(&wide).unwrap();
    for split in ["train", "t10k"] {
        crate::common::write_idx(
            &wide.join(format!("{split}-images-idx3-ubyte")),
            &[4, 5, 5],
            &[7; 100],
        );
        crate::common::write_idx(
            &wide.join(format!("{split}-labels-idx1-ubyte")),
            &[4],
            &[0, 1, 2, 0],
        );
    }
    for (what, args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = prunelab(&dir, &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(expected), "{what}: expected {expected:?} in {err}");
        assert!(!err.contains("panicked") && !err.contains("stack backtrace"), "{what}: {err}");
        assert!(
            files_in(&dir.join("out")).is_empty(),
            "{what}: wrote {:?}",
            files_in(&dir.join("out"))
        );
    }
    // eval and inspect refuse the same files the same way.
    for args in [
        vec!["eval", "--model", "mismatched.safetensors", "--data", "data"],
        vec!["inspect", "mismatched.safetensors"],
    ] {
        let out = prunelab(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains("tensor `2.weight` has shape [8, 12]"), "{}", stderr(&out));
    }
    let out = prunelab(&dir, &["inspect", "corrupt.pt"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).lines().count(), 1, "one sentence: {}", stderr(&out));
}

#[test]
fn help_of_every_model_command_shows_an_example() {
    let dir = test_dir("models-help");
    for (command, example) in [
        (
            "prune",
            "prunelab prune --model mlp.pt --method importance_node --keep 0.5 --out pruned.pt",
        ),
        ("eval", "prunelab eval --model mlp.pt --data"),
        ("inspect", "prunelab inspect models/tiny-mlp.pt"),
    ] {
        let out = prunelab(&dir, &[command, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Examples:") && help.contains(example), "{command}: {help}");
    }
}
