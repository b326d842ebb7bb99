//! Experiments from YAML: the `plan` (typed runs with stable ids) → each run's `task` (train →
//! prune → evaluate) → `record` (results.csv appended run by run, manifest.json), driven by the
//! `runner`; `merge` combines the shards of a job array. `task::model_file` is the same pipeline
//! for a model file (`prunelab prune`, `eval`).
pub mod agreement;
pub mod cost;
pub mod manifest;
pub mod masks_file;
pub mod merge;
pub mod plan;
pub mod record;
pub mod runner;
pub mod summary;
pub mod task;
pub mod trajectory;

/// The names of the files and folders of an output folder, defined once.
pub mod names {
    /// Tidy results, one row per run × mask sample.
    pub const RESULTS: &str = "results.csv";
    /// The experiment with every default filled in.
    pub const CONFIG: &str = "config.resolved.yaml";
    /// Provenance and the crash-safe append record.
    pub const MANIFEST: &str = "manifest.json";
    /// The log of every session.
    pub const LOG: &str = "log.txt";
    /// Held by the one process writing the folder.
    pub const LOCK: &str = ".lock";
    /// Trained networks, one folder per run id.
    pub const MODELS: &str = "models";
    /// Teacher-student trajectories, `trajectories/<run_id>.csv`.
    pub const TRAJECTORIES: &str = "trajectories";
    /// The shards of a job array, `shards/I-of-N/`.
    pub const SHARDS: &str = "shards";
}
