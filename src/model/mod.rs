//! Networks and their files.
pub mod io;
pub mod load;
pub mod mlp;
pub mod torchscript;
pub mod two_layer;
