//! Learning dynamics end to end: a run records its trajectory (without changing the trained
//! student), `theory ode` writes the same format from the ODE and compares, `plot` draws both.
use crate::common::{prunelab, stderr, test_dir};
use std::path::Path;

/// N = 100, M = 1, K = 2, α_max = 40, with node and edge pruning at one budget.
fn config(name: &str, trajectory: &str) -> String {
    format!(
        "name: {name}\nseeds: [1, 2]\ntask:\n  teacher_student:\n    input_dim: 100\n    \
         teacher_hidden: 1\n    student_hidden: 2\n    v_star: 2.0\n    train_steps: 4000\n    \
         test_samples: 2000\n    lr: 0.5\n{trajectory}prune:\n  methods: [random_node, dpp_node, \
         random_edge, dpp_edge]\n  budget: {{ nodes: [1] }}\n  reweight: [false, true]\n  masks: 3\n"
    )
}

fn run(dir: &Path, args: &[&str]) -> String {
    let out = prunelab(dir, args);
    assert!(out.status.success(), "prunelab {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn trajectories_are_recorded_compared_with_the_ode_and_plotted() {
    let dir = test_dir("dynamics");
    std::fs::write(dir.join("plain.yaml"), config("plain", "")).unwrap();
    let traj = "    trajectory: { points: 12 }\n";
    std::fs::write(dir.join("traj.yaml"), config("traj", traj)).unwrap();
    run(&dir, &["run", "plain.yaml", "--out", "runs"]);
    run(&dir, &["run", "traj.yaml", "--out", "runs"]);

    // The same runs (the trajectory is not part of the id) train the same students, bit for bit.
    let models = dir.join("runs/plain/models");
    let mut ids: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2);
    for id in &ids {
        let a = std::fs::read(models.join(id).join("student.safetensors")).unwrap();
        let b = std::fs::read(dir.join("runs/traj/models").join(id).join("student.safetensors"))
            .unwrap();
        assert!(a == b, "run {id}: the student differs with checkpoints");
    }
    assert!(!dir.join("runs/plain/trajectories").exists());

    // One file per run: a `none` row per checkpoint (0, 12 log-spaced α, the end) with Q, R, v,
    // and the pruned rows (node methods with and without DIVNET, random edge once, no DPP edge).
    let text =
        std::fs::read_to_string(dir.join("runs/traj/trajectories").join(format!("{}.csv", ids[0])))
            .unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..7], ["experiment", "run_id", "seed", "status", "source", "step", "alpha"]);
    for c in ["eps", "recent_loss", "Q_0_0", "Q_0_1", "Q_1_1", "R_1_0", "v_1", "input_dim", "lr"] {
        assert!(header.contains(&c), "{c} missing from {header:?}");
    }
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let unpruned: Vec<&Vec<&str>> = rows.iter().filter(|r| r[col("method")] == "none").collect();
    let spec = prunelab::config::TrajectorySpec { points: Some(12), alpha: None };
    let steps = prunelab::experiment::trajectory::checkpoints(&spec, 100, 4000).unwrap();
    let recorded: Vec<u64> = unpruned.iter().map(|r| r[col("step")].parse().unwrap()).collect();
    assert_eq!(recorded, steps);
    assert_eq!((steps[0], steps[1], *steps.last().unwrap()), (0, 1, 4000));
    assert_eq!(unpruned.last().unwrap()[col("alpha")], "40");
    assert_eq!(rows.len(), steps.len() * (1 + 2 + 2 + 1));
    assert!(rows.iter().all(|r| r[col("method")] != "dpp_edge"));
    let eps = |r: &Vec<&str>| r[col("eps")].parse::<f64>().unwrap();
    assert!(eps(unpruned.last().unwrap()) < 0.5 * eps(unpruned[0]), "the student learns");
    // The last checkpoint's ε is the closed form the run records in results.csv.
    let results = std::fs::read_to_string(dir.join("runs/traj/results.csv")).unwrap();
    let res_header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let unpruned_row: Vec<&str> = results
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[1] == ids[0] && r[5] == "none")
        .unwrap();
    let ge_theory: f64 =
        unpruned_row[res_header.iter().position(|c| *c == "ge_theory").unwrap()].parse().unwrap();
    assert!((ge_theory - eps(unpruned.last().unwrap())).abs() < 1e-9 * ge_theory.max(1.0));

    // The ODE in the same format, for both runs, and the comparison.
    let out = run(
        &dir,
        &["theory", "ode", "traj.yaml", "--all-runs", "--points", "40", "--out", "ode.csv"],
    );
    assert!(out.contains("wrote ode.csv (2 run(s))"), "{out}");
    let ode = std::fs::read_to_string(dir.join("ode.csv")).unwrap();
    assert_eq!(ode.lines().next(), text.lines().next(), "the same columns");
    assert!(ode.lines().skip(1).all(|l| l.contains(",ode,")));
    let report = run(&dir, &["theory", "ode", "traj.yaml", "--compare", "runs/traj", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    let gap = report["runs"][0]["max_rel_gap"].as_f64().unwrap();
    assert!(gap.is_finite() && gap < 1.0, "{report}");
    assert!(report["by_input_dim"][0]["final_q_max"].as_f64().unwrap() < 1.0);

    // One figure with both sources: ε(α) on a log axis, and a pruned method's.
    let traj_files = format!("runs/traj/trajectories/{}.csv", ids[0]);
    let other = format!("runs/traj/trajectories/{}.csv", ids[1]);
    let args = ["plot", &traj_files, &other, "ode.csv", "--where", "method=none", "--by", "source"];
    run(&dir, &[&args[..], &["--log-x", "--log-y", "--out", "eps.svg"]].concat());
    let svg = std::fs::read_to_string(dir.join("eps.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="mean""#).count(), 2, "simulation and ODE");
    assert!(svg.contains(">simulation<") && svg.contains(">ODE (N → ∞)<"), "{svg}");
    assert!(svg.contains(">α = steps / N<"));
    let args = ["plot", &traj_files, &other, "ode.csv", "--where", "method=dpp_node", "--by"];
    run(&dir, &[&args[..], &["method,reweight,source", "--log-x", "--out", "dpp.svg"]].concat());
    let svg = std::fs::read_to_string(dir.join("dpp.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="mean""#).count(), 4, "DPP node ± DIVNET × simulation, ODE");
}
