//! The YAML schema. Every struct denies unknown keys, so a misspelt key is an error that names it
//! (with its path and line, from serde_yaml). Any value written as a list is a sweep axis; the plan
//! multiplies the axes out (see `plan`).
use crate::data::images::Normalize;
use crate::model::mlp::Activation;
use crate::prune::dpp::kernel::KernelKind;
use crate::prune::layer::NodeRemoval;
use crate::prune::whole::Allocation;
use crate::prune::{ImportanceVariant, Method, RandomVariant, ReweightVariant};
use serde::de::{self, value::SeqAccessDeserializer, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::marker::PhantomData;

/// A setting that is either one value or a list of values to sweep over.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Axis<T> {
    One(T),
    Many(Vec<T>),
}

/// Reads a scalar as `One` and a sequence as `Many`, passing the value straight to `T` so that a
/// wrong type is reported by `T` with the key's own path and line (serde's untagged enums would
/// only say that nothing matched, at the enclosing map).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Axis<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AxisVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for AxisVisitor<T> {
            type Value = Axis<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(SeqAccessDeserializer::new(seq)).map(Axis::Many)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                T::deserialize(v.into_deserializer()).map(Axis::One)
            }
        }
        deserializer.deserialize_any(AxisVisitor(PhantomData))
    }
}

impl<T: Clone> Axis<T> {
    /// The values of the axis, in the order written.
    pub fn values(&self) -> Vec<T> {
        match self {
            Axis::One(v) => vec![v.clone()],
            Axis::Many(vs) => vs.clone(),
        }
    }
}

impl<T> From<T> for Axis<T> {
    fn from(value: T) -> Self {
        Axis::One(value)
    }
}

/// A whole experiment file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Names the output folder `OUT/<name>/` and the `experiment` column.
    pub name: String,
    /// One run per seed (and per combination of the other axes).
    #[serde(default = "default_seeds")]
    pub seeds: Axis<u64>,
    pub task: Task,
    /// Pruning of each trained network (absent: train and evaluate only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<Prune>,
}

fn default_seeds() -> Axis<u64> {
    Axis::One(1)
}

/// What each run trains: exactly one of the sections. (A struct of optional sections rather than
/// an enum, because serde_yaml reads enums only from `!tags`.)
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_student: Option<TeacherStudent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<MlpTask>,
}

/// A classification MLP trained by minibatch SGD on a dataset folder (paper §5.2).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MlpTask {
    /// Dataset folder (MNIST-format IDX or CIFAR-10 binary), relative to the config file.
    pub data: String,
    /// The folder resolved against the config file's location (set by `config::load`).
    #[serde(skip)]
    pub data_dir: std::path::PathBuf,
    /// `auto` (the paper's), `none`, or {mean: [..], std: [..]}.
    #[serde(default)]
    pub normalize: Normalize,
    /// Hidden layer widths; the input and output sizes come from the data.
    pub hidden: Vec<i64>,
    #[serde(default)]
    pub activation: Activation,
    pub epochs: Axis<i64>,
    pub batch_size: Axis<i64>,
    pub lr: Axis<f64>,
    #[serde(default = "default_momentum")]
    pub momentum: Axis<f64>,
    #[serde(default = "default_true")]
    pub shuffle: bool,
    /// Use only the first n training samples (quick runs, tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_samples: Option<i64>,
    /// Use only the first n test samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_samples: Option<i64>,
}

fn default_momentum() -> Axis<f64> {
    Axis::One(0.9)
}

/// The teacher-student setting (DESIGN.md §4). Sizes are read as signed integers so that a
/// negative value gets prunelab's own message rather than a parse error.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherStudent {
    /// N, the input dimension.
    pub input_dim: Axis<i64>,
    /// M, the teacher's hidden units.
    pub teacher_hidden: Axis<i64>,
    /// K, the student's hidden units (a multiple of M).
    pub student_hidden: Axis<i64>,
    /// v*, every teacher second-layer weight.
    #[serde(default = "default_v_star")]
    pub v_star: Axis<f64>,
    /// σ, the standard deviation of the label noise.
    #[serde(default = "default_noise")]
    pub noise_std: Axis<f64>,
    /// Online SGD steps (one fresh sample each). Give this or `train_alpha`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_steps: Option<Axis<i64>>,
    /// Online SGD steps per input, α = steps/N: each run trains round(α·N) steps, so a sweep over
    /// `input_dim` keeps α fixed. Give this or `train_steps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_alpha: Option<Axis<f64>>,
    /// Held-out samples for the empirical error.
    pub test_samples: Axis<i64>,
    /// η; the layers use η/√N (first) and η/N (second).
    pub lr: Axis<f64>,
    /// Rescale each teacher row to norm √N so that T_nn = 1 exactly (default false: the raw
    /// Gaussian rows, T_nn ≈ 1 ± O(1/√N)).
    #[serde(default)]
    pub normalize_teacher: bool,
    /// `auto` (fused loops on CPU, tensors on CUDA), `fused` (CPU only) or `tensor`.
    #[serde(default)]
    pub engine: EngineChoice,
    /// Record the student along training at these checkpoints (one trajectory file per run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trajectory: Option<TrajectorySpec>,
}

/// Checkpoints of the recorded trajectory, in α = steps / N: `points` log-spaced ones over the
/// four decades below the end of training, or the given `alpha` values (exactly one of the two).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectorySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<Vec<f64>>,
}

fn default_v_star() -> Axis<f64> {
    Axis::One(4.0)
}
fn default_noise() -> Axis<f64> {
    Axis::One(0.0)
}

/// Which online SGD implementation to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineChoice {
    #[default]
    Auto,
    Fused,
    Tensor,
}

/// How each trained network is pruned: every method × budget × reweight choice, with `masks`
/// samples for the random methods (importance masks are deterministic: one sample). Keys that
/// apply to one task only are refused for the other (see `config::keys`).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    pub methods: Vec<Method>,
    pub budget: BudgetSection,
    #[serde(default = "default_reweight")]
    pub reweight: Axis<bool>,
    #[serde(default = "default_masks")]
    pub masks: i64,
    /// Teacher-student: rescale the student's rows to norm √N before pruning (the reference's
    /// code does).
    #[serde(default = "default_true")]
    pub normalize_rows: bool,
    #[serde(default)]
    pub random: RandomVariant,
    #[serde(default)]
    pub importance: ImportanceVariant,
    #[serde(default)]
    pub reweight_variant: ReweightVariant,
    /// MLP: the hidden layer to prune, `w1` (the first, default) … `w{L−1}`.
    #[serde(default = "default_layer")]
    pub layer: String,
    /// MLP: the DPP node kernel (default RBF, β = 10/60000, ε = 0.01, as the reference's MNIST runs).
    #[serde(default = "default_node_kernel")]
    pub node_kernel: KernelKind,
    /// MLP: the DPP edge kernel (default RBF, β = 0.5, ε = 0.01).
    #[serde(default = "default_edge_kernel")]
    pub edge_kernel: KernelKind,
    /// MLP: what a removed unit leaves behind (`fold_bias`, the reference's function, or `drop`).
    #[serde(default)]
    pub node_removal: NodeRemoval,
    /// MLP: DIVNET regresses activations with the layer's bias (the reference leaves it out).
    #[serde(default)]
    pub include_bias: bool,
    /// MLP: training samples for the kernels and least squares (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_samples: Option<i64>,
    /// MLP: several hidden layers pruned in order under one budget (`[w1, w2]` or `all`);
    /// replaces `layer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<LayerList>,
    /// MLP: how a budget over several layers is shared out (`uniform` or `scores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<Allocation>,
    /// MLP: fine-tune each pruned network with its masks held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finetune: Option<Finetune>,
}

/// `prune.layers`: a list of hidden layers or the word `all`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum LayerList {
    Names(Vec<String>),
    Word(String),
}

/// `prune.finetune`: minibatch SGD on the training split after pruning.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Finetune {
    pub epochs: i64,
    pub lr: f64,
    #[serde(default = "default_finetune_momentum")]
    pub momentum: f64,
    #[serde(default = "default_finetune_batch_size")]
    pub batch_size: i64,
}

fn default_finetune_momentum() -> f64 {
    0.9
}
fn default_finetune_batch_size() -> i64 {
    100
}

fn default_layer() -> String {
    "w1".into()
}
fn default_node_kernel() -> KernelKind {
    KernelKind::Rbf { beta: 10.0 / 60000.0, epsilon: 0.01 }
}
fn default_edge_kernel() -> KernelKind {
    KernelKind::Rbf { beta: 0.5, epsilon: 0.01 }
}

/// Budgets as kept units (`nodes`), kept inputs per unit (`edges`) or kept fractions p of the
/// layer's incoming weights (`fractions`, MLPs: the reference's grid); the other granularity gets
/// the count that keeps the same number of parameters.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fractions: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edges: Option<Vec<i64>>,
}

fn default_reweight() -> Axis<bool> {
    Axis::One(false)
}
fn default_masks() -> i64 {
    100
}
fn default_true() -> bool {
    true
}
