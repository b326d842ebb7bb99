//! Determinantal point processes for diverse selection: kernels (`kernel`) and an exact k-DPP
//! sampler (`sampler`) that reuses one eigendecomposition for many samples.
pub mod kernel;
mod projection;
pub mod sampler;
