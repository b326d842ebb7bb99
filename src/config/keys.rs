//! Which keys apply to which task. The schema accepts every key any task knows (a misspelt key is
//! refused there); this second reading of the same YAML text, with one allow-list per task,
//! refuses a key of the other task with its path and line, exactly as a misspelt one.
use super::schema::Experiment;
use anyhow::{anyhow, Result};
use serde::de::IgnoredAny;
use serde::Deserialize;

/// A struct whose fields are the prune keys every task has and the given ones, each optional and
/// its value ignored, and the list of the given ones.
macro_rules! prune_keys {
    ($name:ident, $only:ident { $($key:ident),* $(,)? }) => {
        /// The prune keys that only this task has.
        const $only: &[&str] = &[$(stringify!($key)),*];

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct $name {
            methods: Option<IgnoredAny>,
            budget: Option<IgnoredAny>,
            reweight: Option<IgnoredAny>,
            masks: Option<IgnoredAny>,
            random: Option<IgnoredAny>,
            importance: Option<IgnoredAny>,
            reweight_variant: Option<IgnoredAny>,
            $($key: Option<IgnoredAny>,)*
        }
    };
}

prune_keys!(StudentPruneKeys, STUDENT_ONLY { normalize_rows });
prune_keys!(
    LayerPruneKeys,
    LAYER_ONLY {
        layer,
        node_kernel,
        edge_kernel,
        node_removal,
        include_bias,
        calibration_samples,
        layers,
        allocation,
        finetune,
    }
);

/// The top level with one task's prune keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Keys<P> {
    name: IgnoredAny,
    seeds: Option<IgnoredAny>,
    task: IgnoredAny,
    prune: Option<P>,
}

/// Refuses keys of `text` (already parsed as `experiment`) that do not apply to its task.
pub fn check(text: &str, experiment: &Experiment) -> Result<()> {
    let (task, result) = if experiment.task.mlp.is_some() {
        ("mlp", serde_yaml::from_str::<Keys<LayerPruneKeys>>(text).map(drop))
    } else {
        ("teacher_student", serde_yaml::from_str::<Keys<StudentPruneKeys>>(text).map(drop))
    };
    result.map_err(|err| {
        let message = err.to_string();
        let key = message.split('`').nth(1).unwrap_or("?");
        let line = err.location().map(|l| format!(" (line {})", l.line())).unwrap_or_default();
        anyhow!("prune.{key}{line}: this key does not apply to {task} experiments; remove it")
    })
}

/// Removes from a serialised experiment the prune keys of the other task (the schema fills in
/// every key's default), so that the resolved config reads back.
pub fn strip_other_task(value: &mut serde_yaml::Value, mlp: bool) {
    let other = if mlp { STUDENT_ONLY } else { LAYER_ONLY };
    if let Some(prune) = value.get_mut("prune").and_then(|p| p.as_mapping_mut()) {
        for key in other {
            prune.remove(*key);
        }
    }
}
