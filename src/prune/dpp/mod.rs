//! Determinantal point processes for diverse selection: kernels (`kernel`), an exact k-DPP
//! sampler (`sampler`) that reuses one eigendecomposition for many samples, and DPP edge masks
//! over one dense kernel per unit, drawn in parallel (`edge`).
pub mod edge;
pub mod kernel;
mod projection;
pub mod sampler;
