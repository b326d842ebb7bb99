//! Theory: order parameters, closed-form generalisation errors, the paper's theorems for an
//! idealised student and exact expected errors of pruning methods (pure f64, no tensors).
pub mod blocks;
pub mod expected;
pub mod ge;
mod linalg;
pub mod methods;
pub mod ode;
pub mod order_params;
pub mod report;
pub mod rk45;
pub mod theorems;
