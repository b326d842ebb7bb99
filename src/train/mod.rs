//! Training: online SGD for teacher-student students.
pub mod online;
