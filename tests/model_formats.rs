//! Issue #13: masks for PyTorch (`--masks`, `--torch-prune-layout`, read back by `model::load`),
//! and the MLPs practitioners have: Dropout, BatchNorm1d folded into the Linear before it, GELU,
//! SiLU and LeakyReLU. Fixtures are written here with prunelab's own TorchScript writer and
//! safetensors state dicts (no PyTorch needed).
use crate::common::{
    files_in, model_fixture, prunelab, read_safetensors, stderr, test_dir, tiny_idx_dataset,
    write_safetensors, NamedTensors,
};
use prunelab::model::load::{load, ActivationSource, LoadOptions, LoadedModel};
use prunelab::model::mlp::{Activation, Mlp};
use prunelab::model::sequential::Module;
use prunelab::model::torchscript;
use prunelab::seed;
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn inputs(n: i64, dim: i64) -> Tensor {
    let values: Vec<f32> = (0..n * dim).map(|i| ((i as f32) * 0.417).cos() * 1.5).collect();
    Tensor::from_slice(&values).view([n, dim])
}

fn open(path: &Path) -> LoadedModel {
    load(path, &LoadOptions::default()).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}

fn tensor<'a>(tensors: &'a NamedTensors, name: &str) -> &'a (String, Vec<usize>, Vec<f32>) {
    tensors.iter().find(|t| t.0 == name).unwrap_or_else(|| panic!("no `{name}` in {tensors:?}"))
}

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs().max().double_value(&[])
}

#[test]
fn masks_and_the_torch_prune_layout_describe_the_pruned_model_and_load_back() {
    let dir = test_dir("formats-masks");
    tiny_idx_dataset(&dir.join("data"), 60);
    let input = model_fixture("tiny-mlp.pt");
    let run = |method: &str, outs: &[&str]| {
        let mut args = vec!["prune", "--model", input.to_str().unwrap(), "--method", method];
        args.extend(["--keep", "0.5", "--reweight", "--calib", "data"]);
        args.extend(outs);
        let out = prunelab(&dir, &args);
        assert!(out.status.success(), "{method}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = run(
        "importance_node",
        &[
            "--out",
            "masked.safetensors",
            "--masks",
            "m.safetensors",
            "--torch-prune-layout",
            "tp.safetensors",
        ],
    );
    assert!(
        report.contains("m.safetensors (masks") && report.contains("torch.nn.utils.prune"),
        "{report}"
    );
    let original = open(&input).mlp;
    let masked = open(&dir.join("masked.safetensors"));
    let (masks, meta) = read_safetensors(&dir.join("m.safetensors"));
    assert_eq!(meta["prunelab.kind"], "masks");
    let names: Vec<&str> = masks.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["0.bias_mask", "0.weight_mask", "2.weight_mask"]);
    for (name, shape, values) in &masks {
        assert!(values.iter().all(|&v| v == 0.0 || v == 1.0), "{name}: not 0/1");
        let pruned = match name.as_str() {
            "0.weight_mask" => (&masked.mlp.weights[0], original.weights[0].size()),
            "0.bias_mask" => (&masked.mlp.biases[0], original.biases[0].size()),
            _ => (&masked.mlp.weights[1], original.weights[1].size()),
        };
        assert_eq!(shape.iter().map(|&s| s as i64).collect::<Vec<_>>(), pruned.1, "{name}");
        let pruned = Vec::<f32>::try_from(pruned.0.flatten(0, -1)).unwrap();
        for (m, w) in values.iter().zip(&pruned) {
            if name != "0.bias_mask" {
                assert_eq!(*m == 0.0, *w == 0.0, "{name}: mask {m}, pruned weight {w}");
            } else if *m == 0.0 {
                assert_eq!(*w, 0.0, "{name}");
            }
        }
    }
    assert_eq!(tensor(&masks, "0.bias_mask").2.iter().filter(|&&v| v == 1.0).count(), 10);
    // The torch.nn.utils.prune layout: _orig and _mask for masked tensors, the others plain.
    let (tp, meta) = read_safetensors(&dir.join("tp.safetensors"));
    assert_eq!(meta["prunelab.layout"], "torch.nn.utils.prune");
    let names: Vec<&str> = tp.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "0.bias_mask",
            "0.bias_orig",
            "0.weight_mask",
            "0.weight_orig",
            "2.bias",
            "2.weight_mask",
            "2.weight_orig",
            "4.bias",
            "4.weight"
        ]
    );
    assert_eq!(tensor(&tp, "0.weight_mask").2, tensor(&masks, "0.weight_mask").2);
    // Removed entries of weight_orig keep the original weights, as torch.nn.utils.prune does.
    let orig = tensor(&tp, "0.weight_orig");
    let first = Vec::<f32>::try_from(original.weights[0].flatten(0, -1)).unwrap();
    for ((o, m), w) in orig.2.iter().zip(&tensor(&tp, "0.weight_mask").2).zip(&first) {
        if *m == 0.0 {
            assert_eq!(o, w);
        }
    }
    // Read back: weight = orig · mask, the same forward as the masked model.
    let back = open(&dir.join("tp.safetensors"));
    let x = inputs(100, 16);
    assert_eq!(max_diff(&back.mlp.forward(&x), &masked.mlp.forward(&x)), 0.0);
    assert_eq!(back.layers[0].weight, "0.weight");

    // Edge masks: each unit keeps ⌈0.5·16⌉ = 8 inputs, zero exactly where the weights are.
    run("importance_edge", &["--out", "edge.safetensors", "--masks", "edge-masks.safetensors"]);
    let (masks, _) = read_safetensors(&dir.join("edge-masks.safetensors"));
    let names: Vec<&str> = masks.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(names, ["0.weight_mask"]);
    let (edge, _) = read_safetensors(&dir.join("edge.safetensors"));
    let w = tensor(&edge, "0.weight");
    for (row, mask) in w.2.chunks(16).zip(masks[0].2.chunks(16)) {
        assert_eq!(mask.iter().filter(|&&m| m == 1.0).count(), 8);
        for (w, m) in row.iter().zip(mask) {
            assert!(*m == 0.0 || *m == 1.0);
            assert_eq!(*m == 0.0, *w == 0.0);
        }
    }

    // Refused, nothing written: the layout with --compact, a masks file read as a model.
    std::fs::create_dir_all(dir.join("out")).unwrap();
    let out = prunelab(
        &dir,
        &[
            "prune",
            "--model",
            input.to_str().unwrap(),
            "--method",
            "importance_node",
            "--keep",
            "0.5",
            "--compact",
            "--out",
            "out/a.pt",
            "--torch-prune-layout",
            "out/tp.safetensors",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--torch-prune-layout keeps the input's shapes"),
        "{}",
        stderr(&out)
    );
    assert!(files_in(&dir.join("out")).is_empty());
    let out = prunelab(&dir, &["inspect", "m.safetensors"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("m.safetensors: tensor `0.bias_mask` has no `0.bias_orig` beside it"),
        "{}",
        stderr(&out)
    );
}

/// Explicit evaluation of Linear → BatchNorm1d → act chains: (x − mean)/sqrt(var + eps)·w + b.
/// (weight, bias, running_mean, running_var, eps) of a BatchNorm1d.
type Norm = (Tensor, Tensor, Tensor, Tensor, f64);

struct Reference {
    linears: Vec<(Tensor, Tensor)>,
    /// (weight, bias, mean, var, eps) after linear l, if any.
    norms: Vec<Option<Norm>>,
    activation: Activation,
}

impl Reference {
    fn forward(&self, x: &Tensor) -> Tensor {
        let d = |t: &Tensor| t.to_kind(Kind::Double);
        let mut h = d(x);
        let last = self.linears.len() - 1;
        for (l, (w, b)) in self.linears.iter().enumerate() {
            h = h.matmul(&d(w).tr()) + d(b);
            if let Some((g, beta, mean, var, eps)) = &self.norms[l] {
                h = (h - d(mean)) / (d(var) + *eps).sqrt() * d(g) + d(beta);
            }
            if l < last {
                h = self.activation.apply(&h);
            }
        }
        h
    }
}

fn reference(seed_: u64, activation: Activation) -> Reference {
    let mlp =
        Mlp::xavier(&[6, 5, 4, 3], activation, &mut seed::rng(seed_, "bn"), Device::Cpu).unwrap();
    let vec =
        |n: i64, f: &dyn Fn(i64) -> f32| Tensor::from_slice(&(0..n).map(f).collect::<Vec<f32>>());
    let norm = |n: i64, eps: f64| {
        Some((
            vec(n, &|i| 0.5 + 0.3 * i as f32),
            vec(n, &|i| 0.2 - 0.1 * i as f32),
            vec(n, &|i| 0.4 * (i as f32).sin()),
            vec(n, &|i| 0.05 + 0.7 * i as f32),
            eps,
        ))
    };
    Reference {
        linears: mlp
            .weights
            .iter()
            .zip(&mlp.biases)
            .map(|(w, b)| (w.copy(), b.rand_like() - 0.5))
            .collect(),
        norms: vec![norm(5, 1e-3), norm(4, 1e-3), None],
        activation,
    }
}

#[test]
fn batchnorm_is_folded_and_dropout_passes_in_torchscript_modules() {
    let dir = test_dir("formats-bn-pt");
    for activation in [Activation::Relu, Activation::Gelu, Activation::Silu, Activation::LeakyRelu]
    {
        let r = reference(2, activation);
        let mut children = Vec::new();
        for (l, (w, b)) in r.linears.iter().enumerate() {
            children.push(Module::Linear { weight: w.shallow_clone(), bias: b.shallow_clone() });
            if let Some((g, beta, mean, var, eps)) = &r.norms[l] {
                children.push(Module::BatchNorm1d {
                    weight: g.shallow_clone(),
                    bias: beta.shallow_clone(),
                    running_mean: mean.shallow_clone(),
                    running_var: var.shallow_clone(),
                    eps: *eps,
                });
            }
            if l + 1 < r.linears.len() {
                children.push(Module::Activation(activation));
                children.push(Module::Dropout(0.3));
            }
        }
        let path = dir.join(format!("{}.pt", activation.name()));
        std::fs::write(&path, torchscript::encode_sequential(&children).unwrap()).unwrap();
        let model = open(&path);
        assert_eq!(
            (model.mlp.activation, model.activation),
            (activation, ActivationSource::Matched)
        );
        let names: Vec<&str> = model.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["0", "4", "8"], "{activation:?}");
        assert_eq!(model.layers[0].batchnorm.as_ref().unwrap().name, "1");
        assert_eq!(model.layers[1].batchnorm.as_ref().unwrap().eps, 1e-3);
        assert!(
            model.describe().contains("BatchNorm1d folded: `1` into `0`, `5` into `4`"),
            "{}",
            model.describe()
        );
        assert!(model.forward_check.unwrap().max_abs_diff < 1e-5, "{:?}", model.forward_check);
        let x = inputs(64, 6);
        let diff = max_diff(&model.mlp.forward(&x), &r.forward(&x));
        assert!(diff < 1e-5, "{activation:?}: {diff}");
    }
}

/// The state dict of `r` as PyTorch names an nn.Sequential(Linear, BatchNorm1d, act, Dropout, …).
fn bn_state_dict(r: &Reference) -> NamedTensors {
    let values = |t: &Tensor| Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    let shape = |t: &Tensor| t.size().iter().map(|&s| s as usize).collect::<Vec<_>>();
    let mut tensors: NamedTensors = Vec::new();
    for (l, (w, b)) in r.linears.iter().enumerate() {
        let i = 4 * l;
        tensors.push((format!("{i}.weight"), shape(w), values(w)));
        tensors.push((format!("{i}.bias"), shape(b), values(b)));
        if let Some((g, beta, mean, var, _)) = &r.norms[l] {
            let j = i + 1;
            for (field, t) in
                [("weight", g), ("bias", beta), ("running_mean", mean), ("running_var", var)]
            {
                tensors.push((format!("{j}.{field}"), shape(t), values(t)));
            }
            tensors.push((format!("{j}.num_batches_tracked"), vec![], vec![100.0]));
        }
    }
    tensors
}

#[test]
fn batchnorm_in_state_dicts_is_folded_with_its_eps_and_written_back_as_identity() {
    let dir = test_dir("formats-bn-st");
    tiny_idx_dataset(&dir.join("data"), 60);
    let r = reference(4, Activation::Tanh);
    let tensors = bn_state_dict(&r);
    let x = inputs(64, 6);
    // eps from the metadata; without it, PyTorch's 1e-5.
    let meta = |eps: Option<&str>| {
        let mut m: HashMap<String, String> =
            [("prunelab.activation".to_string(), "tanh".to_string())].into();
        if let Some(eps) = eps {
            m.insert("prunelab.batchnorm_eps".into(), eps.into());
        }
        m
    };
    write_safetensors(&dir.join("bn.safetensors"), &tensors, &meta(Some("0.001")));
    let model = open(&dir.join("bn.safetensors"));
    assert_eq!(model.mlp.sizes(), [6, 5, 4, 3]);
    assert!(max_diff(&model.mlp.forward(&x), &r.forward(&x)) < 1e-5);
    write_safetensors(&dir.join("bn-default.safetensors"), &tensors, &meta(None));
    let default = open(&dir.join("bn-default.safetensors"));
    let r5 = Reference {
        norms: r
            .norms
            .iter()
            .map(|n| {
                n.as_ref().map(|(a, b, c, d, _)| (a.copy(), b.copy(), c.copy(), d.copy(), 1e-5))
            })
            .collect(),
        linears: r.linears.iter().map(|(w, b)| (w.copy(), b.copy())).collect(),
        activation: r.activation,
    };
    assert!(max_diff(&default.mlp.forward(&x), &r5.forward(&x)) < 1e-5);
    assert!(max_diff(&default.mlp.forward(&x), &r.forward(&x)) > 1e-5, "eps must matter here");
    // Pruned and written back: the BatchNorms are identities, the function is the pruned one.
    let out = prunelab(
        &dir,
        &[
            "prune",
            "--model",
            "bn.safetensors",
            "--method",
            "importance_node",
            "--keep",
            "0.5",
            "--out",
            "p.safetensors",
            "--torch-prune-layout",
            "tp.safetensors",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let (written, _) = read_safetensors(&dir.join("p.safetensors"));
    assert_eq!(tensor(&written, "1.running_mean").2, vec![0.0; 5]);
    assert_eq!(tensor(&written, "1.weight").2, vec![1.0; 5]);
    let p = open(&dir.join("p.safetensors"));
    let tp = open(&dir.join("tp.safetensors"));
    assert!(max_diff(&p.mlp.forward(&x), &tp.mlp.forward(&x)) < 1e-6);
    assert_eq!(p.layers[0].batchnorm.as_ref().unwrap().name, "1");

    // What is not a foldable BatchNorm1d is refused, naming the file and the tensor.
    let variant = |name: &str, edit: &dyn Fn(&mut NamedTensors)| {
        let mut t = tensors.clone();
        edit(&mut t);
        write_safetensors(&dir.join(name), &t, &meta(None));
    };
    variant("no-var.safetensors", &|t| t.retain(|x| x.0 != "5.running_var"));
    variant("layernorm.safetensors", &|t| t.push(("3.weight".into(), vec![5], vec![1.0; 5])));
    variant("first.safetensors", &|t| {
        t.push(("bn.running_mean".into(), vec![6], vec![0.0; 6]));
        t.push(("bn.running_var".into(), vec![6], vec![1.0; 6]));
    });
    variant("other.safetensors", &|t| t.push(("0.scale".into(), vec![5], vec![1.0; 5])));
    for (file, expected) in [
        ("no-var.safetensors", "no-var.safetensors: tensor `5.running_mean` has no `5.running_var` beside it"),
        ("layernorm.safetensors", "layernorm.safetensors: tensor `3.weight` has shape [5], a 1-D weight of a normalisation layer other than BatchNorm1d"),
        ("first.safetensors", "first.safetensors: BatchNorm1d `bn` does not follow a Linear layer"),
        ("other.safetensors", "other.safetensors: tensor `0.scale` (shape [5]) is not a Linear layer's weight or bias"),
    ] {
        let out = prunelab(&dir, &["inspect", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert!(stderr(&out).contains(expected), "{file}: {}", stderr(&out));
    }
}

#[test]
fn gelu_silu_and_leaky_relu_are_recognised_in_modules_and_by_name() {
    let dir = test_dir("formats-activations");
    let x = inputs(50, 7);
    for activation in [Activation::Gelu, Activation::Silu, Activation::LeakyRelu] {
        let mlp =
            Mlp::xavier(&[7, 6, 5, 2], activation, &mut seed::rng(8, "act"), Device::Cpu).unwrap();
        let pt = dir.join("m.pt");
        std::fs::write(&pt, torchscript::encode(&mlp).unwrap()).unwrap();
        let back = open(&pt);
        assert_eq!((back.mlp.activation, back.activation), (activation, ActivationSource::Matched));
        assert_eq!(back.forward_check.unwrap().max_abs_diff, 0.0);
        let parsed = prunelab::model::load::parse_activation(activation.name()).unwrap();
        assert_eq!(parsed, activation);
        assert_eq!(max_diff(&back.mlp.forward(&x), &mlp.forward(&x)), 0.0);
    }
    let leaky = Tensor::from_slice(&[-2.0f32, 3.0]);
    assert_eq!(Vec::<f32>::try_from(Activation::LeakyRelu.apply(&leaky)).unwrap(), [-0.02, 3.0]);
    let err = prunelab::model::load::parse_activation("softplus").unwrap_err().to_string();
    assert!(err.contains("sigmoid, relu, tanh, gelu, silu, leaky_relu"), "{err}");
}
