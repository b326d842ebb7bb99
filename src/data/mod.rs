//! Data sources: the teacher-student stream (and, for real data, dataset files).
pub mod teacher;
