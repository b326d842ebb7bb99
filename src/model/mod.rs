//! Networks and their files.
pub mod io;
mod layers;
pub mod load;
mod loaded;
pub mod mlp;
pub mod pickle;
mod script_in;
pub mod sequential;
pub mod state_dict;
pub mod torchscript;
pub mod two_layer;
mod zip;
