//! prunelab: pruning research on feed-forward networks, after "Statistical Mechanical Analysis of
//! Neural Network Pruning" (Acharyya et al., UAI 2021), on libtorch through `tch`.
//!
//! Data flows one way, one module per stage:
//! `config` (YAML → validated experiment) → `plan` (sweep axes → runs with stable ids) →
//! `train` (online SGD on `data::teacher` streams) → `evaluate` (test error, order parameters and
//! the closed-form error of `theory`) → `record` (results.csv, manifest.json). `runner` drives a
//! plan through these stages (`sweep` merges the shards of a plan run as a job array); `cli` is
//! the command line.
pub mod cli;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod files;
pub mod logging;
pub mod model;
pub mod plan;
pub mod plot;
pub mod prune;
pub mod record;
pub mod runner;
pub mod seed;
pub mod sweep;
pub mod task;
pub mod theory;
pub mod train;
