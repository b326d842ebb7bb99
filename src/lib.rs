//! prunelab: pruning research on feed-forward networks, after "Statistical Mechanical Analysis of
//! Neural Network Pruning" (Acharyya et al., UAI 2021), on libtorch through `tch`.
//!
//! Data flows one way, one module per stage:
//! `config` (YAML → validated experiment) → `experiment::plan` (sweep axes → typed runs with
//! stable ids) → `train` (online SGD on `data::teacher` streams, minibatch SGD on `data` sets) →
//! `prune` (one layer pruner for every network) → `evaluate` (test error, order parameters and the
//! closed-form error of `theory`) → `experiment::record` (results.csv, manifest.json).
//! `experiment::runner` drives a plan through these stages, `experiment::task` holds each task's
//! pipeline (the model-file task serves `prunelab prune` and `eval`); `cli` parses arguments and
//! prints.
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod experiment;
pub mod files;
pub mod interrupt;
pub mod logging;
pub mod model;
pub mod plot;
pub mod prune;
pub mod seed;
mod simd;
pub mod theory;
pub mod train;
