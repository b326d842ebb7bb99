//! Data sources: the teacher-student stream, and dataset files (MNIST-format IDX, CIFAR-10 binary).
pub mod cifar;
pub mod dataset_dir;
pub mod idx;
pub mod images;
pub mod normal;
pub mod teacher;
