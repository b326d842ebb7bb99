//! Networks and their files.
pub mod io;
pub mod mlp;
pub mod two_layer;
