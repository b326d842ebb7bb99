//! Networks and their files.
pub mod io;
pub mod two_layer;
