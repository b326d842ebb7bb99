//! Theory: order parameters and closed-form generalisation errors (pure f64, no tensors).
pub mod ge;
pub mod order_params;
