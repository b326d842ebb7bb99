//! `ge_expected` against the Monte-Carlo mean of `ge_theory` over the recorded masks, and the
//! masks file against the rows: a reduced Figure 2 (N = 100, K = 6, M = 2, a short training) with
//! every method that has an exact expectation, a second one with an RBF DPP kernel and Bernoulli
//! random masks, and the masks read back reproducing each row's ge_theory.
use crate::common::{prunelab, stderr, test_dir};
use prunelab::evaluate::ge_theory;
use prunelab::experiment::masks_file::{MaskRecord, FILE};
use prunelab::experiment::record::{read_rows, ResultRow};
use prunelab::model::io::load_two_layer;
use prunelab::model::two_layer::TwoLayer;
use prunelab::prune::Mask;
use std::collections::BTreeMap;
use std::path::Path;

fn config(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\nseeds: [7]\ntask:\n  teacher_student:\n    input_dim: 100\n    teacher_hidden: 2\n    \
         student_hidden: 6\n    v_star: 4.0\n    train_steps: 20000\n    test_samples: 2000\n    lr: 0.5\n\
         prune:\n  methods: [random_node, importance_node, dpp_node, random_edge, importance_edge, dpp_edge]\n  \
         budget: {{ nodes: [1, 2, 3, 5] }}\n  reweight: [false, true]\n  masks: 100\n{extra}"
    )
}

fn run(dir: &Path, name: &str, extra: &str) -> Vec<ResultRow> {
    std::fs::write(dir.join(format!("{name}.yaml")), config(name, extra)).unwrap();
    let out = prunelab(dir, &["run", &format!("{name}.yaml"), "--out", "out", "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    read_rows(&dir.join(format!("out/{name}/results.csv"))).unwrap()
}

/// Pruned rows grouped by method, reweighting and budget.
fn groups(rows: &[ResultRow]) -> BTreeMap<String, Vec<&ResultRow>> {
    let mut out: BTreeMap<String, Vec<&ResultRow>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.mask_sample.is_some()) {
        let key = format!("{} rw={:?} {:?}:{:?}", r.method, r.reweight, r.keep_nodes, r.keep_edges);
        out.entry(key).or_default().push(r);
    }
    out
}

/// Asserts |mean − ge_expected| ≤ 3 SE (random masks) or agreement to 1e-4 (deterministic ones)
/// for every group that has an expectation; returns the methods checked.
fn check_means(rows: &[ResultRow]) -> Vec<String> {
    let mut checked = Vec::new();
    for (key, group) in groups(rows) {
        let Some(expected) = group[0].ge_expected else { continue };
        assert!(
            group.iter().all(|r| r.ge_expected == Some(expected)),
            "{key}: one value per batch"
        );
        let xs: Vec<f64> = group.iter().map(|r| r.ge_theory.unwrap()).collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        if xs.len() == 1 {
            assert!(
                (mean - expected).abs() <= 1e-4 * (1.0 + expected),
                "{key}: {mean} vs {expected}"
            );
        } else {
            let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let se = sd / n.sqrt();
            assert!((mean - expected).abs() <= 3.0 * se, "{key}: {mean} ± {se} vs {expected}");
        }
        checked.push(group[0].method.to_string());
    }
    checked.dedup();
    checked
}

#[test]
fn monte_carlo_means_lie_within_three_standard_errors_of_ge_expected() {
    let dir = test_dir("expected-vs-masks");
    let rows = run(&dir, "exact", "");
    let checked = check_means(&rows);
    for method in ["random_node", "importance_node", "dpp_node", "random_edge", "importance_edge"] {
        assert!(checked.contains(&method.to_string()), "{method} has no ge_expected: {checked:?}");
    }
    assert!(rows
        .iter()
        .filter(|r| r.method.to_string() == "dpp_edge")
        .all(|r| r.ge_expected.is_none()));
    assert!(rows.iter().filter(|r| r.mask_sample.is_none()).all(|r| r.ge_expected.is_none()));
    let variants = "  random: bernoulli\n  importance: signed\n  reweight_variant: as_coded\n";
    let rows = run(&dir, "variants", variants);
    let checked = check_means(&rows);
    assert!(
        checked.contains(&"importance_node".to_string())
            && checked.contains(&"random_edge".to_string())
    );
    assert!(!checked.contains(&"random_node".to_string()), "Bernoulli node masks have no value");
    let as_coded =
        |r: &&ResultRow| r.reweight == Some(true) && r.method.to_string().ends_with("_node");
    assert!(rows.iter().filter(as_coded).all(|r| r.ge_expected.is_none()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The student with only the kept units or inputs of `mask`.
fn masked(net: &TwoLayer, mask: &Mask) -> TwoLayer {
    let keep = mask.keep_matrix(net.hidden, net.input_dim);
    let w = net.w.iter().zip(&keep).map(|(&w, &k)| if k { w } else { 0.0 }).collect();
    let v = match mask {
        Mask::Nodes(units) => {
            (0..net.hidden).map(|h| if units.contains(&h) { net.v[h] } else { 0.0 }).collect()
        }
        Mask::Edges(_) => net.v.clone(),
    };
    TwoLayer { w, v, ..net.clone() }
}

#[test]
fn the_masks_file_holds_the_masks_each_row_was_pruned_with() {
    let dir = test_dir("masks-file");
    let rows = run(&dir, "masks", "");
    let run_id = &rows[0].run_id;
    let models = dir.join("out/masks/models").join(run_id);
    let record = MaskRecord::read(&models.join(FILE)).unwrap();
    let student = load_two_layer(&models.join("student.safetensors")).unwrap().normalized_rows();
    let teacher = load_two_layer(&models.join("teacher.safetensors")).unwrap();
    assert_eq!((record.hidden, record.inputs), (6, 100));
    assert_eq!(record.teacher_block.as_ref().map(|(b, m)| (b.len(), *m)), Some((6, 2)));
    let mut compared = 0;
    for row in rows.iter().filter(|r| r.reweight == Some(false)) {
        let name = if row.method.to_string().ends_with("_node") {
            format!("{}/{}:{}", row.method, row.keep_nodes.unwrap(), edges_of(&rows, row))
        } else {
            format!("{}/{}:{}", row.method, nodes_of(&rows, row), row.keep_edges.unwrap())
        };
        let masks = record.masks.get(&name).unwrap_or_else(|| panic!("no {name} in the file"));
        let mask = &masks[row.mask_sample.unwrap() as usize];
        let eps = ge_theory(&masked(&student, mask), &teacher).unwrap();
        assert!(
            (eps - row.ge_theory.unwrap()).abs() < 1e-9,
            "{name}: {eps} vs {:?}",
            row.ge_theory
        );
        compared += 1;
    }
    assert_eq!(compared, 4 * (100 + 1 + 100 + 100 + 1 + 100));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The matched edge budget of a node row (the edge rows at the same kept fraction).
fn edges_of(rows: &[ResultRow], row: &ResultRow) -> u64 {
    let at = |r: &&ResultRow| {
        r.keep_fraction == row.keep_fraction && r.method.to_string().ends_with("_edge")
    };
    rows.iter().find(at).and_then(|r| r.keep_edges).unwrap()
}

/// The matched node budget of an edge row.
fn nodes_of(rows: &[ResultRow], row: &ResultRow) -> u64 {
    let at = |r: &&ResultRow| {
        r.keep_fraction == row.keep_fraction && r.method.to_string().ends_with("_node")
    };
    rows.iter().find(at).and_then(|r| r.keep_nodes).unwrap()
}
