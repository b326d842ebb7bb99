//! What a `prunelab prune` call asks for, and the tolerance within which two networks' outputs
//! count as equal (compaction and reloaded TorchScript are checked against it).
use super::ModelOptions;
use crate::model::load;
use crate::model::mlp::Mlp;
use crate::prune::dpp::kernel::KernelKind;
use crate::prune::whole::Allocation;
use crate::prune::Method;
use crate::train::minibatch::Sgd;
use std::path::PathBuf;
use tch::Tensor;

/// One `prunelab prune` call.
#[derive(Clone, Debug)]
pub struct PruneRequest {
    pub model: PathBuf,
    pub method: Method,
    /// Kept fraction of the layer's incoming weights, in (0, 1].
    pub keep: f64,
    /// The hidden layers: names in the file or `wN`, or `all`; empty: the first.
    pub layers: Vec<String>,
    /// How `keep` is shared out when several layers are pruned.
    pub allocation: Allocation,
    pub reweight: bool,
    /// Dataset whose training split calibrates DPP kernels and reweighting.
    pub calib: Option<PathBuf>,
    pub calib_samples: Option<usize>,
    /// Dataset whose test split gives the test error before and after.
    pub data: Option<PathBuf>,
    pub compact: bool,
    pub outputs: Vec<PathBuf>,
    /// `--masks`: the masks alone, as `<weight>_mask`/`<bias>_mask` tensors.
    pub masks: Option<PathBuf>,
    /// `--torch-prune-layout`: a state dict in torch.nn.utils.prune's layout.
    pub torch_prune: Option<PathBuf>,
    pub seed: u64,
    pub node_kernel: KernelKind,
    pub edge_kernel: KernelKind,
    /// DIVNET regresses act(XWᵀ) (the reference's) instead of act(XWᵀ + b).
    pub bias_free_divnet: bool,
    pub options: ModelOptions,
    /// Fine-tuning of the pruned network on the training split of `data` (masks held).
    pub finetune: Option<Sgd>,
}

/// The largest output difference accepted as equal, relative to the outputs' size.
pub(super) fn tolerance(net: &Mlp, probe: &Tensor) -> f64 {
    let _guard = tch::no_grad_guard();
    load::FORWARD_TOLERANCE * net.forward(probe).abs().max().double_value(&[]).max(1.0)
}
