//! Which keys apply to which task. The schema accepts every key any task knows (a misspelt key is
//! refused there); this second reading of the same YAML text, with one allow-list per task,
//! refuses a key of the other task with its path and line, exactly as a misspelt one.
use super::schema::Experiment;
use anyhow::{anyhow, Result};
use serde::de::IgnoredAny;
use serde::Deserialize;

/// A struct whose fields are exactly the given keys, each optional and its value ignored.
macro_rules! key_set {
    ($name:ident { $($key:ident),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct $name {
            $(#[serde(default)] $key: Option<IgnoredAny>,)*
        }
    };
}

key_set!(StudentPruneKeys {
    methods,
    budget,
    reweight,
    masks,
    random,
    importance,
    reweight_variant,
    normalize_rows
});
key_set!(LayerPruneKeys {
    methods,
    budget,
    reweight,
    masks,
    random,
    importance,
    reweight_variant,
    layer,
    node_kernel,
    edge_kernel,
    node_removal,
    include_bias,
    calibration_samples
});

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
