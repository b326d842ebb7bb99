//! Real-data MLPs: loading and normalisation, training to the paper's accuracy, pruning a hidden
//! layer with exact budgets and function-preserving removal and reweighting, end to end.
use crate::common::{fashion_mnist, prunelab, stderr, test_dir, tiny_idx_dataset};
use prunelab::data::images::{load, NamedNormalize, Normalize};
use prunelab::experiment::record::{read_rows, RowKind};
use prunelab::model::mlp::{Activation, Mlp};
use prunelab::prune::budget::from_fractions;
use prunelab::prune::dpp::kernel::KernelKind;
use prunelab::prune::layer::{Layer, LayerPruner, NodeRemoval, Options};
use prunelab::prune::stats::LayerStats;
use prunelab::prune::{Mask, Method};
use prunelab::seed;
use tch::{Device, Kind, Tensor};

fn options() -> Options {
    Options {
        node_kernel: KernelKind::Rbf { beta: 1e-3, epsilon: 0.01 },
        edge_kernel: KernelKind::Rbf { beta: 0.5, epsilon: 0.01 },
        node_removal: NodeRemoval::FoldBias,
        ..Options::default()
    }
}

/// `mlp` with its first hidden layer pruned by `mask`, statistics (bias-free, as the reference)
/// from `x`.
fn pruned(mlp: &Mlp, x: &Tensor, mask: &Mask, reweight: bool) -> Mlp {
    let layer = Layer::of_mlp(mlp, 0).unwrap();
    let stats = LayerStats::calibrate(mlp, 0, x, false, false).unwrap();
    let pruner = LayerPruner::new(&layer, &stats, options(), "w1").unwrap();
    pruner.pruned(mask, reweight).unwrap().into_mlp(mlp, 0)
}

#[test]
fn idx_data_is_normalised_like_torchvision() {
    let dir = test_dir("idx-normalise");
    tiny_idx_dataset(&dir, 10);
    let data = load(&dir, &Normalize::default(), Some(6), None, Device::Cpu).unwrap();
    assert_eq!(
        (data.train_x.size(), data.test_x.size(), data.dim, data.classes),
        (vec![6, 16], vec![10, 16], 16, 3)
    );
    // image 2, pixel 3 = 2·7 + 3·13 = 53
    let expected = (53.0 / 255.0 - 0.1307) / 0.3081;
    assert!((data.train_x.double_value(&[2, 3]) - expected).abs() < 1e-6);
    assert_eq!(data.train_y.int64_value(&[5]), 2);
    let raw = load(&dir, &Normalize::Named(NamedNormalize::None), None, None, Device::Cpu).unwrap();
    assert!((raw.train_x.double_value(&[2, 3]) - 53.0 / 255.0).abs() < 1e-6);
    let custom = Normalize::MeanStd { mean: vec![0.5], std: vec![0.25] };
    let c = load(&dir, &custom, None, None, Device::Cpu).unwrap();
    assert!((c.train_x.double_value(&[2, 3]) - (53.0 / 255.0 - 0.5) / 0.25).abs() < 1e-6);
    let wrong = Normalize::MeanStd { mean: vec![0.5, 0.5], std: vec![0.25, 0.25] };
    let err = load(&dir, &wrong, None, None, Device::Cpu).err().unwrap();
    assert!(format!("{err:#}").contains("2 values given for 1 channel"), "{err:#}");
}

/// A trained-ish small MLP on the tiny dataset, and its calibration.
fn small_net() -> (Mlp, Tensor) {
    let x = Tensor::randn([200, 12], (Kind::Float, Device::Cpu));
    let mut rng = seed::rng(4, "init");
    let mut mlp = Mlp::xavier(&[12, 8, 6, 3], Activation::Sigmoid, &mut rng, Device::Cpu).unwrap();
    mlp.biases[0] = Tensor::linspace(-1.0, 1.0, 8, (Kind::Float, Device::Cpu));
    (mlp, x)
}

#[test]
fn node_removal_matches_the_reference_function_with_the_parameters_gone() {
    tch::manual_seed(1);
    let (mlp, x) = small_net();
    let pruned = pruned(&mlp, &x, &Mask::Nodes(vec![0, 2, 5]), false);
    // The reference masks W1 rows only: pruned units still emit sigmoid(b1).
    let reference = mlp.clone();
    for p in [1i64, 3, 4, 6, 7] {
        let _ = reference.weights[0].get(p).fill_(0.0);
    }
    let diff = (pruned.forward(&x) - reference.forward(&x)).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "{diff}");
    // …but the pruned units' parameters are really zero: rows of W1, b1 and columns of W2.
    for p in [1i64, 3, 4, 6, 7] {
        assert_eq!(pruned.weights[0].get(p).abs().sum(Kind::Float).double_value(&[]), 0.0);
        assert_eq!(pruned.biases[0].double_value(&[p]), 0.0);
        assert_eq!(pruned.weights[1].select(1, p).abs().sum(Kind::Float).double_value(&[]), 0.0);
    }
    let kept_params = 3 * 12 + 3 * 6;
    let scope_nonzero: i64 =
        (0..2).map(|l| pruned.weights[l].count_nonzero(None::<i64>).int64_value(&[])).sum();
    assert_eq!(scope_nonzero as usize, kept_params);
}

#[test]
fn divnet_and_edge_refit_are_exact_on_redundant_units_and_inputs() {
    tch::manual_seed(2);
    let (mut mlp, x) = small_net();
    // Unit 7 copies unit 2 (same weights and, for DIVNET's bias-free regression, bias 0 for both).
    let _ = mlp.biases[0].fill_(0.0);
    let row = mlp.weights[0].get(2).copy();
    mlp.weights[0].get(7).copy_(&row);
    let reweighted = pruned(&mlp, &x, &Mask::Nodes((0..7).collect()), true);
    let diff = (reweighted.forward(&x) - mlp.forward(&x)).abs().max().double_value(&[]);
    assert!(diff < 1e-4, "DIVNET: {diff}");

    // Input 11 duplicates input 10: dropping edge 11 and re-fitting keeps every pre-activation.
    let x2 = x.copy();
    x2.select(1, 11).copy_(&x.select(1, 10));
    let rows: Vec<Vec<usize>> = (0..8).map(|_| (0..11).collect()).collect();
    let refit = pruned(&mlp, &x2, &Mask::Edges(rows.clone()), true);
    let plain = pruned(&mlp, &x2, &Mask::Edges(rows), false);
    let pre = |net: &Mlp| x2.matmul(&net.weights[0].tr());
    let refit_diff = (pre(&refit) - pre(&mlp)).abs().max().double_value(&[]);
    let plain_diff = (pre(&plain) - pre(&mlp)).abs().max().double_value(&[]);
    assert!(refit_diff < 1e-3 && plain_diff > 0.01, "refit {refit_diff}, plain {plain_diff}");
}

#[test]
fn masks_keep_exactly_what_the_budget_promises() {
    tch::manual_seed(3);
    let (mlp, x) = small_net();
    let layer = Layer::of_mlp(&mlp, 0).unwrap();
    let stats = LayerStats::calibrate(&mlp, 0, &x, false, false).unwrap();
    let mut pruner = LayerPruner::new(&layer, &stats, options(), "w1").unwrap();
    let budgets = from_fractions(&[0.25, 0.5, 0.75], 12, 8, 6).unwrap();
    let mut rng = seed::rng(1, "m");
    for method in Method::ALL {
        let masks = pruner.masks(method, &budgets, 2, &mut rng).unwrap();
        for (budget, per_budget) in budgets.iter().zip(&masks) {
            assert_eq!(per_budget.len(), 2);
            for mask in per_budget {
                match mask {
                    Mask::Nodes(kept) => assert_eq!(kept.len(), budget.nodes, "{method:?}"),
                    Mask::Edges(rows) => {
                        assert_eq!(rows.len(), 8);
                        assert!(rows.iter().all(|r| r.len() == budget.edges), "{method:?}");
                    }
                }
            }
        }
    }
    // The output layer has no units to prune.
    let err = Layer::of_mlp(&mlp, 2).err().unwrap();
    assert!(err.to_string().contains("output layer"), "{err}");
    let empty = LayerStats::calibrate(&mlp, 0, &x.narrow(0, 0, 0), false, false).err().unwrap();
    assert!(empty.to_string().contains("calibration set is empty"), "{empty}");
}

#[test]
fn fashion_mnist_trains_to_the_paper_accuracy() {
    let Some(dir) = fashion_mnist("fashion_mnist_trains_to_the_paper_accuracy") else { return };
    let data = load(&dir, &Normalize::default(), None, None, Device::Cpu).unwrap();
    assert_eq!(
        (data.train_x.size()[0], data.test_x.size()[0], data.dim, data.classes),
        (60_000, 10_000, 784, 10)
    );
    let mut mlp = Mlp::xavier(
        &[784, 500, 500, 10],
        Activation::Sigmoid,
        &mut seed::rng(1, "init"),
        Device::Cpu,
    )
    .unwrap();
    let sgd = prunelab::train::minibatch::Sgd {
        lr: 0.1,
        momentum: 0.9,
        batch_size: 100,
        epochs: 10,
        shuffle: true,
    };
    let reports = prunelab::train::minibatch::train(
        &mut mlp,
        (&data.train_x, &data.train_y),
        (&data.test_x, &data.test_y),
        &sgd,
        &mut seed::rng(1, "shuffle"),
        |_| {},
        |_, _| {},
    )
    .unwrap();
    let last = reports.last().unwrap();
    assert!(last.test_error <= 0.13, "test error after 10 epochs: {}", last.test_error);
    assert!(reports[0].train_loss > last.train_loss);
}

#[test]
fn a_fashion_mnist_slice_runs_end_to_end() {
    let Some(data) = fashion_mnist("a_fashion_mnist_slice_runs_end_to_end") else { return };
    let dir = test_dir("fashion-e2e");
    let yaml = format!(
        "name: slice\nseeds: [1]\ntask:\n  mlp:\n    data: {}\n    hidden: [24, 16]\n    epochs: 2\n    batch_size: 100\n    \
         lr: 0.1\n    train_samples: 3000\n    test_samples: 1000\nprune:\n  methods: [random_node, importance_node, dpp_node, \
         random_edge, importance_edge, dpp_edge]\n  budget: {{ fractions: [0.3, 0.7] }}\n  reweight: [false, true]\n  masks: 2\n",
        data.display()
    );
    std::fs::write(dir.join("slice.yaml"), yaml).unwrap();
    let out = prunelab(&dir, &["run", "slice.yaml", "--out", "out", "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_rows(&dir.join("out/slice/results.csv")).unwrap();
    let training: Vec<_> = rows.iter().filter(|r| r.method == RowKind::Training).collect();
    assert_eq!(training.iter().map(|r| r.epoch.unwrap()).collect::<Vec<_>>(), [1, 2]);
    assert!(training.iter().all(|r| r.train_loss.unwrap() > 0.0));
    let unpruned = rows.iter().find(|r| r.method == RowKind::Unpruned).unwrap();
    assert!(unpruned.test_error.unwrap() < 0.4, "{unpruned:?}");
    let pruned: Vec<_> = rows.iter().filter(|r| r.layer.as_deref() == Some("w1")).collect();
    // random: 2 masks, importance: 1; × 2 fractions × 2 reweight
    assert_eq!(pruned.len(), (4 * 2 + 2) * 2 * 2);
    let budgets = from_fractions(&[0.3, 0.7], 784, 24, 16).unwrap();
    for row in &pruned {
        let budget = budgets.iter().find(|b| b.fraction == row.keep_fraction.unwrap()).unwrap();
        let promised = if matches!(row.method, RowKind::Pruned(m) if m.is_node()) {
            budget.nodes * (784 + 16)
        } else {
            24 * budget.edges + 24 * 16
        };
        let achieved = row.achieved_fraction.unwrap() * (784 * 24 + 24 * 16) as f64;
        assert!(
            (achieved - promised as f64).abs() < 1e-6,
            "{} {}: {achieved} vs {promised}",
            row.method,
            budget.fraction
        );
        let e = row.test_error.unwrap();
        assert!((0.0..=1.0).contains(&e));
    }
    assert!(dir.join("out/slice/models").read_dir().unwrap().next().is_some());
}

#[test]
fn bad_mlp_configs_and_missing_data_are_refused_before_anything_runs() {
    let dir = test_dir("mlp-bad");
    tiny_idx_dataset(&dir.join("data"), 30);
    let base = "name: m\ntask:\n  mlp:\n    data: data\n    hidden: [5]\n    epochs: 1\n    batch_size: 10\n    lr: 0.1\n\
                prune:\n  methods: [dpp_node]\n  budget: { fractions: [0.5] }\n  masks: 1\n";
    let cases = [
        ("fraction > 1", base.replace("[0.5]", "[1.5]"), "prune.budget.fractions: 1.5 is not allowed"),
        ("fraction 0", base.replace("[0.5]", "[0]"), "prune.budget.fractions: 0 is not allowed"),
        ("beta 0", format!("{base}  node_kernel: {{ type: rbf, beta: 0, epsilon: 0.01 }}\n"), "prune.node_kernel.beta: 0 is not allowed"),
        ("empty calibration", format!("{base}  calibration_samples: 0\n"), "calibration set empty"),
        ("output layer", format!("{base}  layer: w2\n"), "prune.layer: w2 is not a hidden layer"),
        ("bad layer name", format!("{base}  layer: fc1\n"), "prune.layer: \"fc1\" is not a layer name"),
        ("unknown method", base.replace("dpp_node", "magnitude"), "unknown variant `magnitude`"),
        ("two tasks", base.replace("task:\n", "task:\n  teacher_student: { input_dim: 5, teacher_hidden: 1, student_hidden: 1, train_steps: 1, test_samples: 1, lr: 0.1 }\n"), "exactly one task section"),
        ("bad momentum", base.replace("lr: 0.1", "lr: 0.1\n    momentum: 1.0"), "task.mlp.momentum: 1 is not allowed"),
        ("layers of another word", format!("{base}  layers: every\n"), "prune.layers: \"every\" is neither `all` nor a list"),
        ("layers: the output layer", format!("{base}  layers: [w1, w2]\n"), "prune.layer: w2 is not a hidden layer"),
        ("scores for DPP", format!("{base}  layers: all\n  allocation: scores\n"), "allocation `scores` shares the budget out"),
        ("unknown finetune key", format!("{base}  finetune: {{ epochs: 1, lr: 0.1, decay: 0.1 }}\n"), "unknown field `decay`"),
        ("finetune 0 epochs", format!("{base}  finetune: {{ epochs: 0, lr: 0.1 }}\n"), "prune.finetune: epochs and batch_size must be at least 1"),
    ];
    for (what, yaml, expected) in cases {
        std::fs::write(dir.join("m.yaml"), yaml).unwrap();
        let out = prunelab(&dir, &["run", "m.yaml", "--out", "out"]);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{what}: expected {expected:?} in {}",
            stderr(&out)
        );
        assert!(!dir.join("out").exists(), "{what}");
    }
    // A missing data folder is refused at plan time, by --dry-run too, naming the folder.
    std::fs::write(dir.join("m.yaml"), base.replace("data: data", "data: nowhere")).unwrap();
    for extra in [&[][..], &["--dry-run"][..]] {
        let args: Vec<&str> =
            ["run", "m.yaml", "--out", "out"].iter().chain(extra).copied().collect();
        let out = prunelab(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("nowhere"), "{}", stderr(&out));
        assert!(!dir.join("out").exists());
    }
    // The tiny dataset itself runs.
    std::fs::write(dir.join("m.yaml"), base).unwrap();
    let out = prunelab(&dir, &["run", "m.yaml", "--out", "ok"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn all_hidden_layers_are_pruned_and_fine_tuned_in_yaml_experiments() {
    let dir = test_dir("mlp-whole");
    tiny_idx_dataset(&dir.join("data"), 60);
    let yaml = "name: w\ntask:\n  mlp:\n    data: data\n    hidden: [10, 6]\n    epochs: 2\n    batch_size: 10\n    lr: 0.1\n\
                prune:\n  methods: [random_edge, importance_node]\n  budget: { fractions: [0.5] }\n  masks: 2\n  layers: all\n  finetune: { epochs: 2, lr: 0.05 }\n";
    std::fs::write(dir.join("w.yaml"), yaml).unwrap();
    let out = prunelab(&dir, &["run", "w.yaml", "--out", "out"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_rows(&dir.join("out/w/results.csv")).unwrap();
    let pruned: Vec<_> = rows.iter().filter(|r| matches!(r.method, RowKind::Pruned(_))).collect();
    assert_eq!(pruned.len(), 3, "2 random_edge samples and 1 importance_node");
    for row in pruned {
        assert_eq!(row.layer.as_deref(), Some("w1,w2"));
        let fractions = row.layer_kept_fractions.as_deref().unwrap();
        assert!(fractions.starts_with("w1=") && fractions.contains(";w2="), "{fractions}");
        let achieved = row.achieved_fraction.unwrap();
        assert!(achieved > 0.3 && achieved < 0.7, "{achieved}");
        assert!(row.test_error_pruned.is_some() && row.test_error.is_some());
        assert_eq!(row.finetune_losses.as_deref().unwrap().split(';').count(), 2);
    }
    let text = std::fs::read_to_string(dir.join("out/w/config.resolved.yaml")).unwrap();
    assert!(text.contains("layers: all") && text.contains("finetune:"), "{text}");
}
