//! The children of an `nn.Sequential` that `model::torchscript` writes: their TorchScript classes
//! (as `torch.jit.script` compiles `nn.Linear`, the activations, `nn.Dropout` and
//! `nn.BatchNorm1d`) and their tensors. prunelab's own outputs hold Linear layers and one
//! activation; the other modules serve test fixtures of models as practitioners have them.
use crate::model::mlp::{Activation, Mlp};
use tch::Tensor;

/// One child of an `nn.Sequential`.
pub enum Module {
    Linear {
        weight: Tensor,
        bias: Tensor,
    },
    Activation(Activation),
    /// `nn.Dropout(p)`: the identity in evaluation mode.
    Dropout(f64),
    /// `nn.BatchNorm1d(features, eps)` (affine, tracking running statistics).
    BatchNorm1d {
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
    },
}

impl Module {
    /// The children of `nn.Sequential(Linear, act, Linear, …, Linear)` for `mlp`.
    pub fn of_mlp(mlp: &Mlp) -> Vec<Module> {
        let mut children = Vec::new();
        for (l, (w, b)) in mlp.weights.iter().zip(&mlp.biases).enumerate() {
            if l > 0 {
                children.push(Module::Activation(mlp.activation));
            }
            children.push(Module::Linear { weight: w.shallow_clone(), bias: b.shallow_clone() });
        }
        children
    }
}

/// A child's class: its module (`__torch__.torch.nn.modules.linear`), class name, code, and
/// attributes holding tensors (name, tensor, whether a parameter).
pub struct ClassSpec {
    pub module: String,
    pub class: String,
    pub code: String,
    pub tensors: Vec<(&'static str, Tensor, bool)>,
}

pub const MODULES: &str = "__torch__.torch.nn.modules";

const HEADER: &str = "  training : bool\n  _is_full_backward_hook : NoneType\n";

/// The class specs of `children`; classes with class constants (`in_features`, `p`, `eps`, …)
/// are mangled one per instance after the first (`linear.___torch_mangle_0`, …), as PyTorch does.
pub fn class_specs(children: &[Module]) -> Vec<ClassSpec> {
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut mangled = |file: &'static str| {
        let n = counts.entry(file).or_insert(0);
        *n += 1;
        if *n == 1 {
            format!("{MODULES}.{file}")
        } else {
            format!("{MODULES}.{file}.___torch_mangle_{}", *n - 2)
        }
    };
    children
        .iter()
        .map(|child| match child {
            Module::Linear { weight, bias } => linear(mangled("linear"), weight, bias),
            Module::Activation(a) => activation(*a),
            Module::Dropout(p) => {
                let module = mangled("dropout");
                let code = format!(
                    "class Dropout(Module):\n  __parameters__ = []\n  __buffers__ = []\n{HEADER}  \
                     inplace : Final[bool] = False\n  p : Final[float] = {p:?}\n  \
                     def forward(self: {module}.Dropout,\n    input: Tensor) -> Tensor:\n    \
                     return torch.dropout(input, {p:?}, self.training)\n"
                );
                ClassSpec { module, class: "Dropout".into(), code, tensors: Vec::new() }
            }
            Module::BatchNorm1d { weight, bias, running_mean, running_var, eps } => {
                let module = mangled("batchnorm");
                let features = running_mean.size()[0];
                let code = format!(
                    "class BatchNorm1d(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  \
                     __buffers__ = [\"running_mean\", \"running_var\", \"num_batches_tracked\", ]\n  \
                     weight : Tensor\n  bias : Tensor\n  running_mean : Tensor\n  running_var : Tensor\n  \
                     num_batches_tracked : Tensor\n{HEADER}  momentum : Final[float] = 0.1\n  \
                     affine : Final[bool] = True\n  num_features : Final[int] = {features}\n  \
                     track_running_stats : Final[bool] = True\n  eps : Final[float] = {eps:?}\n  \
                     def forward(self: {module}.BatchNorm1d,\n    input: Tensor) -> Tensor:\n    \
                     return torch.batch_norm(input, self.weight, self.bias, self.running_mean, \
                     self.running_var, self.training, 0.1, {eps:?}, True)\n"
                );
                let tracked = Tensor::from_slice(&[100i64]).view([]);
                let tensors = vec![
                    ("weight", weight.shallow_clone(), true),
                    ("bias", bias.shallow_clone(), true),
                    ("running_mean", running_mean.shallow_clone(), false),
                    ("running_var", running_var.shallow_clone(), false),
                    ("num_batches_tracked", tracked, false),
                ];
                ClassSpec { module, class: "BatchNorm1d".into(), code, tensors }
            }
        })
        .collect()
}

fn linear(module: String, weight: &Tensor, bias: &Tensor) -> ClassSpec {
    let (out_f, in_f) = (weight.size()[0], weight.size()[1]);
    let code = format!(
        "class Linear(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  __buffers__ = []\n  \
         weight : Tensor\n  bias : Tensor\n{HEADER}  \
         in_features : Final[int] = {in_f}\n  out_features : Final[int] = {out_f}\n  \
         def forward(self: {module}.Linear,\n    input: Tensor) -> Tensor:\n    \
         weight = self.weight\n    bias = self.bias\n    return torch.linear(input, weight, bias)\n"
    );
    let tensors =
        vec![("weight", weight.shallow_clone(), true), ("bias", bias.shallow_clone(), true)];
    ClassSpec { module, class: "Linear".into(), code, tensors }
}

fn activation(a: Activation) -> ClassSpec {
    let (class, forward, extra) = match a {
        Activation::Sigmoid => ("Sigmoid", "torch.sigmoid(input)", ""),
        Activation::Relu => ("ReLU", "torch.relu(input)", "  inplace : Final[bool] = False\n"),
        Activation::Tanh => ("Tanh", "torch.tanh(input)", ""),
        // Archives of file format version 3 know aten::gelu(Tensor self) only (the exact form).
        Activation::Gelu => {
            ("GELU", "torch.gelu(input)", "  approximate : Final[str] = \"none\"\n")
        }
        Activation::Silu => ("SiLU", "torch.silu(input)", "  inplace : Final[bool] = False\n"),
        Activation::LeakyRelu => (
            "LeakyReLU",
            "torch.leaky_relu(input, 0.01)",
            "  inplace : Final[bool] = False\n  negative_slope : Final[float] = 0.01\n",
        ),
    };
    let module = format!("{MODULES}.activation");
    let code = format!(
        "class {class}(Module):\n  __parameters__ = []\n  __buffers__ = []\n{HEADER}{extra}  \
         def forward(self: {module}.{class},\n    input: Tensor) -> Tensor:\n    return {forward}\n"
    );
    ClassSpec { module, class: class.into(), code, tensors: Vec::new() }
}
