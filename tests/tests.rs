//! Integration tests: one binary (libtorch is linked once). Each module covers one area.
mod cli_run;
mod common;
mod dynamics;
mod expected_vs_masks;
mod hostile;
mod mlp;
mod model_formats;
mod models;
mod plot;
mod pruning;
mod sweep;
mod theory;
mod theory_ode;
mod theory_vs_empirical;
mod training;
