//! `prunelab run` end to end: outputs, determinism, resume, and every refusal of bad input.
use crate::common::{prunelab, root, small_config, stderr, test_dir};
use prunelab::experiment::plan::TaskKind;
use prunelab::experiment::record::{read_rows, RowKind, RunStatus, COLUMNS};

const HEADER: &str = "experiment,run_id,task,seed,layer,method,reweight,keep_nodes,keep_edges,keep_fraction,\
achieved_fraction,params_total,params_nonzero,mask_sample,test_error,ge_empirical,ge_theory,wall_ms,device,status,error,settings,epoch,train_loss,\
layer_kept_fractions,test_error_pruned,finetune_losses";

#[test]
fn a_small_sweep_writes_every_output() {
    let dir = test_dir("sweep-outputs");
    std::fs::write(dir.join("exp.yaml"), small_config("exp", "    noise_std: [0.0, 0.25]\n"))
        .unwrap();
    let out = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = dir.join("out/exp");
    let csv = std::fs::read_to_string(run.join("results.csv")).unwrap();
    // The fixed columns, then every setting of the runs in its own column.
    let settings =
        ",input_dim,lr,noise_std,student_hidden,teacher_hidden,test_samples,train_steps,v_star";
    assert_eq!(csv.lines().next().unwrap(), format!("{HEADER}{settings}"));
    assert_eq!(COLUMNS.join(","), HEADER);
    let rows = read_rows(&run.join("results.csv")).unwrap();
    assert_eq!(rows.len(), 4, "2 seeds × 2 noise levels");
    for row in &rows {
        assert_eq!(
            (row.method, row.status, row.task),
            (RowKind::Unpruned, RunStatus::Ok, TaskKind::TeacherStudent)
        );
        assert_eq!(row.params_total, Some(50 * 4 + 4));
        assert_eq!(row.setting_values[0], "50", "input_dim");
        assert!(
            ["0.0", "0.25"].contains(&row.setting_values[2].as_str()),
            "{:?}",
            row.setting_values
        );
        let (emp, th) = (row.ge_empirical.unwrap(), row.ge_theory.unwrap());
        assert!(emp.is_finite() && th.is_finite() && th >= 0.0);
        let models = run.join("models").join(&row.run_id);
        assert!(
            models.join("student.safetensors").exists()
                && models.join("teacher.safetensors").exists()
        );
    }
    let mut ids: Vec<_> = rows.iter().map(|r| r.run_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "run ids are distinct");
    for file in ["config.resolved.yaml", "manifest.json", "log.txt"] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["libtorch_version"], "2.13.0");
    assert_eq!(manifest["runs"], 4);
    assert!(manifest["finished"].is_string());
    // The resolved config is itself a valid config that plans the same runs.
    let resolved = prunelab::config::parse(
        &std::fs::read_to_string(run.join("config.resolved.yaml")).unwrap(),
    )
    .unwrap();
    let replanned: Vec<_> = prunelab::experiment::plan::plan(&resolved)
        .unwrap()
        .runs
        .into_iter()
        .map(|r| r.id)
        .collect();
    let mut replanned_sorted = replanned.clone();
    replanned_sorted.sort();
    assert_eq!(replanned_sorted, ids);
}

#[test]
fn the_same_config_gives_the_same_results_and_resume_skips_finished_runs() {
    let dir = test_dir("determinism");
    std::fs::write(dir.join("exp.yaml"), small_config("exp", "")).unwrap();
    for out in ["a", "b"] {
        let o = prunelab(&dir, &["run", "exp.yaml", "--out", out, "--device", "cpu"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let strip = |out: &str| -> Vec<_> {
        read_rows(&dir.join(out).join("exp/results.csv"))
            .unwrap()
            .into_iter()
            .map(|r| prunelab::experiment::record::ResultRow { wall_ms: None, ..r })
            .collect()
    };
    assert_eq!(strip("a"), strip("b"));
    // Running again without --resume is refused; with --resume nothing is repeated.
    let again = prunelab(&dir, &["run", "exp.yaml", "--out", "a", "--device", "cpu"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    let resumed = prunelab(&dir, &["run", "exp.yaml", "--out", "a", "--device", "cpu", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("2 skipped"), "{}", stderr(&resumed));
    assert_eq!(strip("a"), strip("b"));
    // A changed config is not resumed into the same folder.
    std::fs::write(dir.join("exp.yaml"), small_config("exp", "    noise_std: 0.5\n")).unwrap();
    let changed = prunelab(&dir, &["run", "exp.yaml", "--out", "a", "--device", "cpu", "--resume"]);
    assert_eq!(changed.status.code(), Some(2));
    assert!(stderr(&changed).contains("different config"), "{}", stderr(&changed));
}

#[test]
fn a_diverging_run_is_recorded_as_failed_and_the_exit_code_is_1() {
    let dir = test_dir("diverge");
    std::fs::write(
        dir.join("exp.yaml"),
        small_config("exp", "").replace("lr: 0.5", "lr: [0.5, 1000000.0]"),
    )
    .unwrap();
    let out = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = read_rows(&dir.join("out/exp/results.csv")).unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r.status == RunStatus::Failed).collect();
    assert_eq!((rows.len(), failed.len()), (4, 2));
    for row in failed {
        assert!(row.error.as_deref().unwrap_or("").contains("diverged"), "{row:?}");
        assert_eq!(row.ge_empirical, None, "no numbers for a diverged run");
    }
}

#[test]
fn a_pruning_sweep_records_every_mask_sample() {
    let dir = test_dir("prune-sweep");
    let yaml = format!(
        "{}{PRUNE}  reweight: [false, true]\n",
        small_config("exp", "").replace("seeds: [1, 2]", "seeds: [1]")
    );
    std::fs::write(dir.join("exp.yaml"), yaml).unwrap();
    let out = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = read_rows(&dir.join("out/exp/results.csv")).unwrap();
    // none + normalized + 2 methods × 2 budgets × 2 reweight × 3 masks
    assert_eq!(rows.len(), 2 + 2 * 2 * 2 * 3);
    let pruned: Vec<_> = rows
        .iter()
        .filter(|r| r.method != RowKind::Unpruned && r.method != RowKind::Normalized)
        .collect();
    for row in &pruned {
        assert_eq!(row.layer.as_deref(), Some("w"));
        let expected_nonzero = if row.method.to_string() == "dpp_node" {
            row.keep_nodes.unwrap() * 51
        } else {
            4 * (row.keep_edges.unwrap() + 1)
        };
        assert_eq!(row.params_nonzero, Some(expected_nonzero), "{row:?}");
        assert!((row.achieved_fraction.unwrap() - expected_nonzero as f64 / 204.0).abs() < 1e-12);
        assert!(row.ge_theory.unwrap() >= 0.0 && row.ge_empirical.unwrap() > 0.0);
    }
    // Budgets: nodes 1, 2 of K = 4 ↔ 12, 25 edges per unit of N = 50.
    let edges: std::collections::BTreeSet<_> = pruned
        .iter()
        .filter(|r| r.method == RowKind::try_from("random_edge".to_string()).unwrap())
        .map(|r| r.keep_edges.unwrap())
        .collect();
    assert_eq!(edges.into_iter().collect::<Vec<_>>(), [12, 25]);
    let samples: std::collections::BTreeSet<_> =
        pruned.iter().map(|r| r.mask_sample.unwrap()).collect();
    assert_eq!(samples.into_iter().collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let dir = test_dir("dry-run");
    std::fs::write(
        dir.join("exp.yaml"),
        small_config("exp", "    lr: [0.1, 0.2, 0.3]\n").replace("    lr: 0.5\n", ""),
    )
    .unwrap();
    let out = prunelab(&dir, &["run", "exp.yaml", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("6 run(s)"), "{stdout}");
    assert!(!dir.join("runs").exists());
}

const PRUNE: &str =
    "prune:\n  methods: [dpp_node, random_edge]\n  budget: { nodes: [1, 2] }\n  masks: 3\n";

/// An MLP experiment (its data folder need not exist: configs are refused before data is read).
const MLP: &str =
    "name: exp\ntask:\n  mlp:\n    data: data\n    hidden: [8, 8]\n    epochs: 1\n    \
                   batch_size: 10\n    lr: 0.1\n";

/// Each bad input: exit code 2, one sentence naming the problem, nothing written.
#[test]
fn bad_input_is_refused_before_anything_runs() {
    let dir = test_dir("bad-input");
    let cases: Vec<(&str, String, &str)> = vec![
        ("unknown key", small_config("exp", "    lrr: 0.5\n"), "unknown field `lrr`"),
        ("its line", small_config("exp", "    lrr: 0.5\n"), "line 11"),
        (
            "unknown section",
            small_config("exp", "").replace("task:", "tsk:"),
            "unknown field `tsk`",
        ),
        (
            "wrong type",
            small_config("exp", "").replace("lr: 0.5", "lr: fast"),
            "task.teacher_student.lr",
        ),
        (
            "K < M",
            small_config("exp", "").replace("student_hidden: 4", "student_hidden: 1"),
            "must be a multiple of",
        ),
        (
            "K not a multiple",
            small_config("exp", "").replace("student_hidden: 4", "student_hidden: 5"),
            "student_hidden K = 5",
        ),
        (
            "N = 0",
            small_config("exp", "").replace("input_dim: 50", "input_dim: 0"),
            "input_dim: 0 is not allowed",
        ),
        (
            "negative noise",
            small_config("exp", "    noise_std: -0.1\n"),
            "noise_std: -0.1 is not allowed",
        ),
        ("zero lr", small_config("exp", "").replace("lr: 0.5", "lr: 0"), "lr: 0 is not allowed"),
        (
            "negative lr",
            small_config("exp", "").replace("lr: 0.5", "lr: -1"),
            "lr: -1 is not allowed",
        ),
        (
            "empty axis",
            small_config("exp", "").replace("seeds: [1, 2]", "seeds: []"),
            "seeds: the list is empty",
        ),
        ("bad name", small_config("../x", ""), "name:"),
        (
            "too many nodes",
            format!("{}{PRUNE}", small_config("exp", "")).replace("[1, 2]", "[1, 7]"),
            "prune.budget.nodes: 7 is outside 1..=4",
        ),
        (
            "too many edges",
            format!("{}{PRUNE}", small_config("exp", "")).replace("nodes: [1, 2]", "edges: [51]"),
            "prune.budget.edges: 51 is outside 1..=50",
        ),
        (
            "unknown method",
            format!("{}{PRUNE}", small_config("exp", "")).replace("dpp_node", "dpp_nod"),
            "unknown variant `dpp_nod`",
        ),
        (
            "no methods",
            format!("{}{PRUNE}", small_config("exp", "")).replace("[dpp_node, random_edge]", "[]"),
            "prune.methods: the list is empty",
        ),
        (
            "zero masks",
            format!("{}{PRUNE}", small_config("exp", "")).replace("masks: 3", "masks: 0"),
            "prune.masks: 0 is not allowed",
        ),
        (
            "two budgets",
            format!("{}{PRUNE}", small_config("exp", ""))
                .replace("nodes: [1, 2]", "nodes: [1], edges: [3]"),
            "give exactly one of",
        ),
        (
            "unknown prune key",
            format!("{}{PRUNE}  beta: 0.5\n", small_config("exp", "")),
            "prune: unknown field `beta`",
        ),
        (
            "an MLP key in a teacher-student experiment",
            format!("{}{PRUNE}  layer: w7\n", small_config("exp", "")),
            "prune.layer (line 15): this key does not apply to teacher_student experiments",
        ),
        (
            "an MLP kernel in a teacher-student experiment",
            format!("{}{PRUNE}  node_kernel: {{ type: linear }}\n", small_config("exp", "")),
            "prune.node_kernel (line 15): this key does not apply to teacher_student experiments",
        ),
        (
            "a teacher-student key in an MLP experiment",
            format!("{MLP}{PRUNE}  normalize_rows: false\n"),
            "prune.normalize_rows (line 13): this key does not apply to mlp experiments",
        ),
        (
            "an MLP layer that does not exist",
            format!("{MLP}{PRUNE}  layer: w3\n"),
            "prune.layer: w3 is not a hidden layer of an MLP with 2 hidden layer(s)",
        ),
    ];
    for (what, yaml, expected) in cases {
        std::fs::write(dir.join("bad.yaml"), yaml).unwrap();
        let out = prunelab(&dir, &["run", "bad.yaml", "--out", "out"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(err.contains(expected), "{what}: expected {expected:?} in {err:?}");
        assert!(err.contains("bad.yaml"), "{what}: the file is not named in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{what}: not one line: {err:?}");
        assert!(!err.contains("panicked"), "{what}: {err}");
        assert!(!dir.join("out").exists(), "{what}: output written");
    }
}

#[test]
fn missing_files_unwritable_folders_and_absent_devices_are_refused() {
    let dir = test_dir("bad-env");
    let missing = prunelab(&dir, &["run", "nope.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read config nope.yaml"), "{}", stderr(&missing));

    std::fs::write(dir.join("exp.yaml"), small_config("exp", "")).unwrap();
    std::fs::write(dir.join("file"), "not a folder").unwrap();
    let unwritable = prunelab(&dir, &["run", "exp.yaml", "--out", "file/sub", "--device", "cpu"]);
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(
        stderr(&unwritable).contains("cannot create the output folder file/sub/exp"),
        "{}",
        stderr(&unwritable)
    );

    let cuda = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cuda:7"]);
    assert_eq!(cuda.status.code(), Some(2));
    assert!(stderr(&cuda).contains("device cuda:7 was requested"), "{}", stderr(&cuda));
    let unknown = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "tpu"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("unknown device \"tpu\""), "{}", stderr(&unknown));
    assert!(!dir.join("out").exists());
}

#[test]
fn every_shipped_config_is_valid() {
    let mut checked = 0;
    let mut stack = vec![root().join("configs")];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let experiment = prunelab::config::load(&path).unwrap_or_else(|e| panic!("{e:#}"));
                prunelab::experiment::plan::plan(&experiment)
                    .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                checked += 1;
            }
        }
    }
    assert!(checked >= 1);
}

#[test]
fn theory_order_params_reads_a_saved_run() {
    let dir = test_dir("order-params");
    std::fs::write(
        dir.join("exp.yaml"),
        small_config("exp", "").replace("seeds: [1, 2]", "seeds: [3]"),
    )
    .unwrap();
    assert!(prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"])
        .status
        .success());
    let row = &read_rows(&dir.join("out/exp/results.csv")).unwrap()[0];
    let models = format!("out/exp/models/{}", row.run_id);
    let out = prunelab(&dir, &["theory", "order-params", &models, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["K"].as_u64(), json["M"].as_u64(), json["N"].as_u64()),
        (Some(4), Some(2), Some(50))
    );
    assert!((json["ge_theory"].as_f64().unwrap() - row.ge_theory.unwrap()).abs() < 1e-12);
    let bad = prunelab(&dir, &["theory", "order-params", "out/exp"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("student.safetensors"), "{}", stderr(&bad));
}
