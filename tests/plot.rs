//! `prunelab plot` end to end: the refusal to pool rows that differ in a setting (exit 2), and
//! SVG and PDF outputs of old-format (packed `settings`) and new-format (setting columns) files.
use crate::common::{prunelab, stderr, test_dir};

/// A fig2c-like results.csv in the older format: two noise levels packed in `settings`.
const OLD: &str = "\
experiment,run_id,task,seed,layer,method,reweight,keep_nodes,keep_edges,keep_fraction,achieved_fraction,params_total,params_nonzero,mask_sample,test_error,ge_empirical,ge_theory,wall_ms,device,status,error,settings,epoch,train_loss
fig2c,a,teacher_student,1,hidden,none,,6,,1.0,1.0,3006,3006,,,0.01,0.01,1.0,cpu,ok,,noise_std=0.0,,
fig2c,a,teacher_student,1,hidden,dpp_node,false,1,,0.17,0.17,3006,501,0,,2.0,1.9,1.0,cpu,ok,,noise_std=0.0,,
fig2c,a,teacher_student,1,hidden,dpp_node,false,2,,0.33,0.33,3006,1002,0,,1.0,0.9,1.0,cpu,ok,,noise_std=0.0,,
fig2c,b,teacher_student,1,hidden,none,,6,,1.0,1.0,3006,3006,,,0.05,0.05,1.0,cpu,ok,,noise_std=0.25,,
fig2c,b,teacher_student,1,hidden,dpp_node,false,1,,0.17,0.17,3006,501,0,,2.5,2.4,1.0,cpu,ok,,noise_std=0.25,,
fig2c,b,teacher_student,1,hidden,dpp_node,false,2,,0.33,0.33,3006,1002,0,,1.5,1.4,1.0,cpu,ok,,noise_std=0.25,,
";

/// The same rows in the newer format: every setting also has its own column.
fn new_format() -> String {
    let mut lines = OLD.lines();
    let mut out =
        format!("{},noise_std,teacher_hidden,student_hidden,v_star\n", lines.next().unwrap());
    for line in lines {
        let noise = if line.contains("noise_std=0.25") { "0.25" } else { "0.0" };
        out.push_str(&format!("{line},{noise},2,6,4.0\n"));
    }
    out
}

#[test]
fn rows_differing_in_a_setting_are_refused_with_exit_2() {
    let dir = test_dir("plot-pooling");
    for (name, text) in [("old.csv", OLD.to_string()), ("new.csv", new_format())] {
        std::fs::write(dir.join(name), text).unwrap();
        let out = prunelab(&dir, &["plot", name, "--by", "method", "--out", "fig.svg"]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("differ in noise_std (0.0, 0.25)")
                && err.contains("--average-over noise_std"),
            "{err}"
        );
        assert!(!dir.join("fig.svg").exists());

        let out = prunelab(
            &dir,
            &["plot", name, "--by", "method", "--average-over", "noise_std", "--out", "fig.svg"],
        );
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let out = prunelab(
            &dir,
            &["plot", name, "--by", "method", "--where", "noise_std=0.25", "--out", "fig.svg"],
        );
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let svg = std::fs::read_to_string(dir.join("fig.svg")).unwrap();
        assert!(svg.contains("σ = 0.25") && svg.contains(">DPP node<"), "{svg}");
        std::fs::remove_file(dir.join("fig.svg")).unwrap();
    }
}

#[test]
fn a_theorem1_figure_with_closed_forms_as_svg_and_pdf() {
    let dir = test_dir("plot-theorem1");
    std::fs::write(dir.join("new.csv"), new_format()).unwrap();
    let args = [
        "plot",
        "new.csv",
        "--x",
        "keep_nodes",
        "--by",
        "noise_std",
        "--theory",
        "--closed-form",
        "theorem1",
        "--out",
        "t1.svg",
        "--out",
        "t1.pdf",
    ];
    let out = prunelab(&dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(dir.join("t1.svg")).unwrap();
    assert_eq!(svg.matches(r#"class="curve""#).count(), 1, "eq. 5 only: no reweighted rows");
    assert_eq!(svg.matches(r#"class="theory""#).count(), 2, "a ge_theory line per series");
    assert!(svg.contains(">Theorem 1 (eq. 5)<"));
    let pdf = std::fs::read(dir.join("t1.pdf")).unwrap();
    assert!(pdf.starts_with(b"%PDF") && pdf.len() > 5_000, "{} bytes", pdf.len());

    // The older format does not record the fixed settings Theorem 1 needs.
    std::fs::write(dir.join("old.csv"), OLD).unwrap();
    let out = prunelab(&dir, &[&["plot", "old.csv"][..], &args[2..]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("needs the setting `teacher_hidden`"), "{}", stderr(&out));
}
