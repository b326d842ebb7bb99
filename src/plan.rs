//! The plan: an experiment's sweep axes multiplied out into concrete runs, each with a stable id
//! derived from its resolved settings (the same settings give the same id on any machine). All
//! rules that tie several settings together are checked here, before anything runs.
use crate::config::{EngineChoice, Experiment, Task};
use anyhow::{bail, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One teacher-student run's settings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TeacherStudentRun {
    pub input_dim: usize,
    pub teacher_hidden: usize,
    pub student_hidden: usize,
    pub v_star: f64,
    pub noise_std: f64,
    pub train_steps: u64,
    pub test_samples: usize,
    pub lr: f64,
}

/// What a run does, with every setting resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTask {
    TeacherStudent(TeacherStudentRun),
}

impl RunTask {
    /// The `task` column of results.csv.
    pub fn kind(&self) -> &'static str {
        match self {
            RunTask::TeacherStudent(_) => "teacher_student",
        }
    }
}

/// One run of the plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// 12 hex digits of SHA-256 over the run's settings and seed.
    pub id: String,
    pub seed: u64,
    pub task: RunTask,
    /// How to train; not part of the id (it changes speed, not the mathematics).
    pub engine: EngineChoice,
}

/// All runs of an experiment, in a fixed order.
#[derive(Clone, Debug)]
pub struct Plan {
    pub experiment: String,
    pub runs: Vec<Run>,
}

#[derive(Serialize)]
struct IdSource<'a> {
    seed: u64,
    task: &'a RunTask,
}

fn run_id(seed: u64, task: &RunTask) -> String {
    let json = serde_json::to_string(&IdSource { seed, task }).expect("run settings serialise");
    let digest = Sha256::digest(json.as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// Expands `experiment` into its runs and checks the rules between settings.
pub fn plan(experiment: &Experiment) -> Result<Plan> {
    let mut runs = Vec::new();
    #[allow(clippy::single_match)] // more task kinds follow
    match &experiment.task {
        Task { teacher_student: Some(ts) } => {
            for input_dim in ts.input_dim.values() {
                for teacher_hidden in ts.teacher_hidden.values() {
                    for student_hidden in ts.student_hidden.values() {
                        if student_hidden < teacher_hidden || student_hidden % teacher_hidden != 0 {
                            bail!(
                                "task.teacher_student: student_hidden K = {student_hidden} must be a multiple of \
                                 teacher_hidden M = {teacher_hidden} and at least as large"
                            );
                        }
                        for v_star in ts.v_star.values() {
                            for noise_std in ts.noise_std.values() {
                                for train_steps in ts.train_steps.values() {
                                    for test_samples in ts.test_samples.values() {
                                        for lr in ts.lr.values() {
                                            let task = RunTask::TeacherStudent(TeacherStudentRun {
                                                input_dim: input_dim as usize,
                                                teacher_hidden: teacher_hidden as usize,
                                                student_hidden: student_hidden as usize,
                                                v_star,
                                                noise_std,
                                                train_steps: train_steps as u64,
                                                test_samples: test_samples as usize,
                                                lr,
                                            });
                                            for seed in experiment.seeds.values() {
                                                let id = run_id(seed, &task);
                                                runs.push(Run {
                                                    id,
                                                    seed,
                                                    task: task.clone(),
                                                    engine: ts.engine,
                                                });
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Task { teacher_student: None } => bail!("task: give one task section, `teacher_student`"),
    }
    let mut ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        bail!(
            "the plan has two identical runs (id {}): a sweep axis lists the same value twice",
            pair[0]
        );
    }
    Ok(Plan { experiment: experiment.name.clone(), runs })
}
