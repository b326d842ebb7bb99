//! Training a teacher-student student with its trajectory recorded: online SGD runs in segments
//! that end at the checkpoints (`task.teacher_student.trajectory`), each continuing the same input
//! stream with the same update, so the final student is bit-identical to one uninterrupted run;
//! at each checkpoint the student is described (`experiment::trajectory`) and, at the end, the
//! run's trajectory file is written atomically.
use super::Context;
use crate::data::teacher::TeacherStream;
use crate::experiment::plan::{Run, TeacherStudentRun};
use crate::experiment::trajectory::{self, Checkpoint, Header, Source};
use crate::files::write_atomic;
use crate::model::two_layer::TwoLayer;
use crate::train::online::{self, Engine, TrainReport};
use anyhow::{Context as _, Result};

/// Trains `student` for `steps` steps at learning rate `lr`, calling `at(step, student,
/// recent_loss)` at each of `checkpoints` (sorted, each ≤ `steps`; recent_loss is NaN before the
/// first step) and `on_chunk(steps_done, recent_loss)` as `online::train` does.
pub fn train_segments(
    student: &mut TwoLayer,
    stream: &mut TeacherStream,
    (steps, checkpoints): (u64, &[u64]),
    (lr, engine): (f64, Engine),
    mut at: impl FnMut(u64, &TwoLayer, f64) -> Result<()>,
    mut on_chunk: impl FnMut(u64, f64),
) -> Result<TrainReport> {
    let (mut done, mut seconds, mut recent_loss) = (0u64, 0.0, f64::NAN);
    for end in checkpoints.iter().copied().map(Some).chain([None]) {
        let target = end.unwrap_or(steps);
        if target > done {
            let start = done;
            let report = online::train(student, stream, target - start, lr, engine, |d, loss| {
                on_chunk(start + d, loss)
            })?;
            (done, seconds, recent_loss) = (target, seconds + report.seconds, report.recent_loss);
        }
        if let Some(step) = end {
            at(step, student, recent_loss)?;
        }
    }
    Ok(TrainReport { steps: done, seconds, recent_loss })
}

/// Trains the run's student, recording its trajectory when the run asks for one.
pub fn train(
    run: &Run,
    ts: &TeacherStudentRun,
    teacher: &TwoLayer,
    (student, stream): (&mut TwoLayer, &mut TeacherStream),
    engine: Engine,
    ctx: &Context,
    on_chunk: impl FnMut(u64, f64),
) -> Result<TrainReport> {
    if ts.checkpoints.is_empty() {
        return online::train(student, stream, ts.train_steps, ts.lr, engine, on_chunk);
    }
    let mut points: Vec<Checkpoint> = Vec::with_capacity(ts.checkpoints.len());
    let at = |step: u64, net: &TwoLayer, loss: f64| -> Result<()> {
        let loss = (step > 0).then_some(loss);
        points.push(trajectory::simulated(ts, net, teacher, step, loss)?);
        Ok(())
    };
    let schedule = (ts.train_steps, ts.checkpoints.as_slice());
    let report = train_segments(student, stream, schedule, (ts.lr, engine), at, on_chunk)?;
    let header = Header {
        experiment: ctx.experiment,
        run,
        settings: ctx.settings,
        source: Source::Simulation,
        k: ts.student_hidden,
        m: ts.teacher_hidden,
    };
    let path = trajectory::path(ctx.dir, &run.id);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomic(&path, trajectory::csv(&header, &points)?.as_bytes())?;
    Ok(report)
}
