//! Networks and their files.
pub mod io;
pub mod load;
pub mod mlp;
pub mod pickle;
pub mod sequential;
pub mod state_dict;
pub mod torchscript;
pub mod two_layer;
