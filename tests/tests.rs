//! Integration tests: one binary (libtorch is linked once). Each module covers one area.
mod common;
