//! Batch jobs that survive: a sweep killed mid-run and resumed, torn results files, parallel
//! jobs, shards and their merge, failing runs, and the refusals.
use crate::common::{prunelab, small_config, stderr, test_dir};
use prunelab::experiment::record::{current_rows, read_rows, ResultRow, RunStatus};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PRUNE: &str =
    "prune:\n  methods: [dpp_node, random_edge]\n  budget: { nodes: [1, 2] }\n  masks: 3\n";

/// The rows of a results.csv with the timing column cleared, sorted by run id, method and mask
/// sample (then by every other column).
fn sorted_rows(path: &Path) -> Vec<ResultRow> {
    let mut rows = untimed(read_rows(path).unwrap());
    rows.sort_by_cached_key(|r| (r.run_id.clone(), r.method, r.mask_sample, format!("{r:?}")));
    rows
}

fn untimed(rows: Vec<ResultRow>) -> Vec<ResultRow> {
    rows.into_iter().map(|r| ResultRow { wall_ms: None, ..r }).collect()
}

fn manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn run_ids(rows: &[ResultRow]) -> Vec<String> {
    rows.iter().map(|r| r.run_id.clone()).collect()
}

#[test]
fn a_sweep_killed_mid_run_resumes_to_the_uninterrupted_results() {
    let dir = test_dir("sweep-kill");
    // Eight runs of about a third of a second each.
    let yaml = small_config("exp", "")
        .replace("seeds: [1, 2]", "seeds: [1, 2, 3, 4, 5, 6, 7, 8]")
        .replace("train_steps: 20000", "train_steps: 600000")
        .replace("test_samples: 5000", "test_samples: 2000");
    std::fs::write(dir.join("exp.yaml"), yaml).unwrap();
    let spawn = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_prunelab"))
            .args(["run", "exp.yaml", "--out", out, "--device", "cpu", "-q"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut reference = spawn("whole");
    let mut victim = spawn("killed");
    let results = dir.join("killed/exp/results.csv");
    let started = Instant::now();
    let lines = || std::fs::read_to_string(&results).map(|t| t.lines().count()).unwrap_or(0);
    while lines() < 2 {
        assert!(started.elapsed() < Duration::from_secs(60), "no run was recorded");
        std::thread::sleep(Duration::from_millis(10));
    }
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let before = read_rows(&results).unwrap();
    assert!((1..8).contains(&before.len()), "the kill landed mid-sweep: {} runs", before.len());
    assert!(before.iter().all(|r| r.status == RunStatus::Ok && r.ge_empirical.is_some()));

    let resumed =
        prunelab(&dir, &["run", "exp.yaml", "--out", "killed", "--device", "cpu", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains(&format!("{} skipped", before.len())),
        "{}",
        stderr(&resumed)
    );
    assert!(reference.wait().unwrap().success());

    let after = read_rows(&results).unwrap();
    let mut ids = run_ids(&after);
    ids.sort();
    ids.dedup();
    assert_eq!((after.len(), ids.len()), (8, 8), "every run id exactly once");
    assert_eq!(
        after[..before.len()],
        before[..],
        "the rows recorded before the kill are untouched"
    );
    assert_eq!(sorted_rows(&results), sorted_rows(&dir.join("whole/exp/results.csv")));
    let manifest = manifest(&dir.join("killed/exp/manifest.json"));
    let earlier = &manifest["earlier_sessions"][0];
    assert!(earlier["finished"].is_null(), "the killed session never finished");
    assert_eq!(earlier["runs_recorded"].as_array().unwrap().len(), before.len());
    assert_eq!(manifest["runs_recorded"].as_array().unwrap().len(), 8 - before.len());
    assert_eq!(manifest["runs_ok"], 8);
}

#[test]
fn a_torn_results_file_is_cut_back_to_whole_runs_and_the_rest_run_again() {
    let dir = test_dir("sweep-torn");
    std::fs::write(dir.join("exp.yaml"), format!("{}{PRUNE}", small_config("exp", ""))).unwrap();
    let out = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.join("out/exp/results.csv");
    let whole = std::fs::read(&path).unwrap();
    let expected = untimed(read_rows(&path).unwrap());
    let rows_per_run = expected.len() / 2;
    let resume =
        || prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu", "--resume"]);

    // A write torn in the middle of a line of the second run: that run is done again, whole.
    std::fs::write(&path, &whole[..whole.len() - whole.len() / 4]).unwrap();
    let resumed = resume();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let err = stderr(&resumed);
    assert!(
        err.contains("results.csv: dropped the last") && err.contains("1 run(s) done, 1 skipped"),
        "{err}"
    );
    assert_eq!(untimed(read_rows(&path).unwrap()), expected);

    // Half a run that stopped at a line break, after the length recorded for the last whole run.
    let mut file = std::fs::read(&path).unwrap();
    let text = String::from_utf8(file.clone()).unwrap();
    let first_run: Vec<&str> = text.lines().skip(1).take(rows_per_run / 2).collect();
    file.extend(format!("{}\n", first_run.join("\n")).bytes());
    std::fs::write(&path, &file).unwrap();
    let resumed = resume();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("0 run(s) done, 2 skipped"), "{}", stderr(&resumed));
    assert_eq!(untimed(read_rows(&path).unwrap()), expected);
}

#[test]
fn parallel_jobs_and_merged_shards_give_the_results_of_one_sequential_process() {
    let dir = test_dir("sweep-shards");
    let yaml = format!(
        "{}{PRUNE}",
        small_config("exp", "    noise_std: [0.0, 0.25]\n")
            .replace("seeds: [1, 2]", "seeds: [1, 2, 3]")
    );
    std::fs::write(dir.join("exp.yaml"), yaml).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "exp.yaml", "--device", "cpu"];
        all.extend(args);
        let out = prunelab(&dir, &all);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        out
    };
    // The same threads per run (1): bit-identical results whatever the number of jobs.
    run(&["--out", "seq", "--jobs", "1", "--threads", "1"]);
    run(&["--out", "par", "--jobs", "2", "--threads", "2"]);
    let sequential = dir.join("seq/exp/results.csv");
    assert_eq!(sorted_rows(&dir.join("par/exp/results.csv")), sorted_rows(&sequential));
    let par = manifest(&dir.join("par/exp/manifest.json"));
    assert_eq!((par["jobs"].as_u64(), par["threads"].as_u64()), (Some(2), Some(1)));

    for shard in ["1/3", "2/3", "3/3"] {
        run(&["--out", "sh", "--shard", shard, "--threads", "1"]);
    }
    let shard2 = manifest(&dir.join("sh/exp/shards/2-of-3/manifest.json"));
    assert_eq!((shard2["runs"].as_u64(), shard2["plan_runs"].as_u64()), (Some(2), Some(6)));
    assert_eq!(shard2["shard"], serde_json::json!({"index": 2, "count": 3}));
    assert!(shard2["hostname"].is_string() && shard2["command_line"][1] == "run");
    let plan = run(&["--out", "sh", "--shard", "2/3", "--dry-run"]);
    let table = String::from_utf8_lossy(&plan.stdout);
    assert!(
        table.contains("6 run(s), 2 in shard 2/3") && table.matches(" ok").count() == 2,
        "{table}"
    );

    for _ in 0..2 {
        // Merging again replaces the earlier merge.
        let merged = prunelab(&dir, &["merge", "sh/exp"]);
        assert!(merged.status.success(), "{}", stderr(&merged));
        assert!(
            stderr(&merged).contains("merged 3 folder(s), 6 of 6 run(s)"),
            "{}",
            stderr(&merged)
        );
    }
    // In plan order, as the sequential process wrote them.
    assert_eq!(
        untimed(read_rows(&dir.join("sh/exp/results.csv")).unwrap()),
        untimed(read_rows(&sequential).unwrap())
    );
    let merged = manifest(&dir.join("sh/exp/manifest.json"));
    assert_eq!(merged["merged_from"].as_array().unwrap().len(), 3);
    assert_eq!(merged["merged_from"][1]["runs_taken"], 2);
    assert_eq!(
        merged["merged_from"][1]["sessions"][0]["runs_recorded"].as_array().unwrap().len(),
        2
    );
    assert_eq!(merged["config_sha256"], shard2["config_sha256"]);
    assert!(merged.get("runs_missing").is_none());
}

#[test]
fn a_failing_run_is_recorded_and_the_others_complete_under_jobs_and_shards() {
    let dir = test_dir("sweep-failing");
    let yaml = small_config("exp", "").replace("lr: 0.5", "lr: [0.5, 1000000.0]");
    std::fs::write(dir.join("exp.yaml"), yaml).unwrap();
    let check = |rows: &[ResultRow]| {
        let failed: Vec<_> = rows.iter().filter(|r| r.status == RunStatus::Failed).collect();
        assert_eq!((rows.len(), failed.len()), (4, 2), "{rows:?}");
        assert!(failed.iter().all(|r| r.error.as_deref().unwrap_or("").contains("diverged")));
        assert!(rows
            .iter()
            .filter(|r| r.status == RunStatus::Ok)
            .all(|r| r.ge_empirical.is_some()));
    };
    let jobs = ["run", "exp.yaml", "--out", "out", "--device", "cpu", "--jobs", "2"];
    let out = prunelab(&dir, &jobs);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let path = dir.join("out/exp/results.csv");
    let first = read_rows(&path).unwrap();
    check(&first);

    for shard in ["1/2", "2/2"] {
        let out = prunelab(
            &dir,
            &["run", "exp.yaml", "--out", "sh", "--device", "cpu", "--shard", shard],
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    }
    let merged = prunelab(&dir, &["merge", "sh/exp"]);
    assert_eq!(merged.status.code(), Some(1), "{}", stderr(&merged));
    assert!(stderr(&merged).contains("4 of 4 run(s) recorded, 2 failed"), "{}", stderr(&merged));
    check(&read_rows(&dir.join("sh/exp/results.csv")).unwrap());

    // Resuming runs the failed runs again and appends; their latest attempt is current.
    let resumed = prunelab(&dir, &[&jobs[..], &["--resume"]].concat());
    assert_eq!(resumed.status.code(), Some(1), "{}", stderr(&resumed));
    assert!(stderr(&resumed).contains("0 run(s) done, 2 skipped as already recorded, 2 failed"));
    let all = read_rows(&path).unwrap();
    assert_eq!(all[..4], first[..], "nothing is rewritten");
    assert_eq!(all.len(), 6);
    let current = current_rows(all);
    check(&current);
    let ok: Vec<_> = current.iter().filter(|r| r.status == RunStatus::Ok).cloned().collect();
    assert_eq!(ok, first.into_iter().filter(|r| r.status == RunStatus::Ok).collect::<Vec<_>>());
    let manifest = manifest(&dir.join("out/exp/manifest.json"));
    assert_eq!(
        (manifest["runs_ok"].as_u64(), manifest["runs_failed"].as_u64()),
        (Some(2), Some(2))
    );
}

#[test]
fn merge_refuses_mixed_configs_and_reports_missing_runs() {
    let dir = test_dir("sweep-merge-refusals");
    let yaml = small_config("exp", "").replace("seeds: [1, 2]", "seeds: [1, 2, 3]");
    std::fs::write(dir.join("a.yaml"), &yaml).unwrap();
    std::fs::write(dir.join("b.yaml"), yaml.replace("lr: 0.5", "lr: 0.4")).unwrap();
    let run = |config: &str, shard: &str| {
        let out =
            prunelab(&dir, &["run", config, "--out", "out", "--device", "cpu", "--shard", shard]);
        assert!(out.status.success(), "{}", stderr(&out));
    };
    let refused = |args: &[&str], expected: &str| {
        let out = prunelab(&dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: expected {expected:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: not one line: {err:?}");
    };
    run("a.yaml", "1/2");
    run("b.yaml", "2/2");
    refused(&["merge", "out/exp"], "come from different configs");
    assert!(!dir.join("out/exp/results.csv").exists());

    std::fs::remove_dir_all(dir.join("out/exp/shards/2-of-2")).unwrap();
    let partial = prunelab(&dir, &["merge", "out/exp"]);
    let err = stderr(&partial);
    assert_eq!(partial.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 of 3 run(s) are missing from every folder") && err.contains("(shard 2/2)"),
        "{err}"
    );
    assert_eq!(
        read_rows(&dir.join("out/exp/results.csv")).unwrap().len(),
        2,
        "what exists is written"
    );
    let missing = manifest(&dir.join("out/exp/manifest.json"))["runs_missing"].clone();
    assert_eq!(missing.as_array().map(Vec::len), Some(1));

    run("a.yaml", "2/2");
    let whole = prunelab(&dir, &["merge", "out/exp"]);
    assert!(whole.status.success(), "{}", stderr(&whole));
    assert_eq!(read_rows(&dir.join("out/exp/results.csv")).unwrap().len(), 3);

    std::fs::create_dir_all(dir.join("empty")).unwrap();
    refused(&["merge", "empty"], "empty is not a prunelab output folder");
    refused(&["merge", "nowhere"], "nowhere is not a folder");
    refused(
        &["merge", "out/exp", "--out", "out/exp/shards/1-of-2"],
        "is one of the folders being merged",
    );
    let single = prunelab(&dir, &["run", "a.yaml", "--out", "single", "--device", "cpu"]);
    assert!(single.status.success());
    refused(&["merge", "out/exp", "--out", "single/exp"], "is not an earlier merge");
}

#[test]
fn bad_sweep_flags_and_busy_folders_are_refused() {
    let dir = test_dir("sweep-bad-flags");
    std::fs::write(dir.join("exp.yaml"), small_config("exp", "")).unwrap();
    for (flags, expected) in [
        (["--shard", "0/3"], "--shard 0/3: the shard number must be between 1 and the shard count"),
        (["--shard", "4/3"], "--shard 4/3:"),
        (["--shard", "3"], "--shard 3: expected I/N"),
        (["--jobs", "0"], "--jobs 0: give the number of runs"),
        (["--jobs", "many"], "--jobs many:"),
    ] {
        let out = prunelab(&dir, &[&["run", "exp.yaml", "--out", "out"], &flags[..]].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(expected), "{flags:?}: expected {expected:?} in {err:?}");
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: not one line: {err:?}");
        assert!(!dir.join("out").exists(), "{flags:?}: output written");
    }
    for command in ["run", "merge"] {
        let help = prunelab(&dir, &[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("Examples:") && text.contains("prunelab merge"), "{text}");
    }

    // A folder that another process is writing is refused.
    std::fs::create_dir_all(dir.join("out/exp")).unwrap();
    let lock = std::fs::File::create(dir.join("out/exp/.lock")).unwrap();
    lock.try_lock().unwrap();
    let busy = prunelab(&dir, &["run", "exp.yaml", "--out", "out", "--device", "cpu"]);
    assert_eq!(busy.status.code(), Some(2), "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("being written by another prunelab process"),
        "{}",
        stderr(&busy)
    );
    assert!(!dir.join("out/exp/results.csv").exists());
}

/// Ctrl-C (and SIGTERM) stop a sweep after the run in flight is recorded: exit 130 (143), a line
/// saying what was recorded and the command that resumes, whole runs only in results.csv.
#[test]
fn a_signal_stops_the_sweep_after_recording_the_run_in_flight() {
    let dir = test_dir("sweep-signal");
    let yaml = small_config("exp", "")
        .replace("seeds: [1, 2]", "seeds: [1, 2, 3, 4, 5, 6, 7, 8]")
        .replace("train_steps: 20000", "train_steps: 600000")
        .replace("test_samples: 5000", "test_samples: 2000");
    std::fs::write(dir.join("exp.yaml"), yaml).unwrap();
    for (signal, code, out) in [(libc::SIGINT, 130, "int"), (libc::SIGTERM, 143, "term")] {
        let child = Command::new(env!("CARGO_BIN_EXE_prunelab"))
            .args(["run", "exp.yaml", "--out", out, "--device", "cpu", "-q"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let results = dir.join(out).join("exp/results.csv");
        let started = Instant::now();
        let lines = || std::fs::read_to_string(&results).map(|t| t.lines().count()).unwrap_or(0);
        while lines() < 2 {
            assert!(started.elapsed() < Duration::from_secs(60), "no run was recorded");
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: sends a signal to our own child process.
        unsafe { libc::kill(child.id() as i32, signal) };
        let output = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{err}");
        assert!(err.contains("--resume") && err.contains("stopped by"), "{err}");
        let rows = read_rows(&results).unwrap();
        assert!((1..8).contains(&rows.len()), "stopped mid-sweep: {} runs", rows.len());
        assert!(rows.iter().all(|r| r.status == RunStatus::Ok));
    }
}
