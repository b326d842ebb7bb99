//! Training: online SGD for teacher-student students, minibatch SGD for classification MLPs.
pub mod minibatch;
pub mod online;
