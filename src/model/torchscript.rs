//! TorchScript files for MLPs, written without Python: the archive `torch.jit.save` makes for
//! `torch.jit.script(nn.Sequential(Linear, Sigmoid, Linear, …))`, so that `torch.jit.load` (and
//! libtorch's `CModule::load`) gives a module whose parameters are real parameters named as
//! PyTorch names them (`0.weight`, `0.bias`, `2.weight`, …), ready to fine-tune or to read with
//! `state_dict()`.
//!
//! Why not `CModule::create_by_tracing`: a traced closure bakes the weights into the graph as
//! constants, so the saved module has no parameters: PyTorch cannot train it, and no tool (prunelab
//! included) can read its weights back through `named_parameters()`.
//!
//! The archive (PyTorch's "PyTorchStreamWriter" format, file format version 3) is an uncompressed
//! zip whose records lie under one folder (`archive/`), each record's data aligned to 64 bytes:
//! * `code/__torch__/torch/nn/modules/{container,linear,activation}.py`: the TorchScript classes
//!   (one `Linear` class per layer, mangled `linear/___torch_mangle_N.py` as PyTorch does, because
//!   `in_features`/`out_features` are class constants);
//! * `data.pkl`: the module object (pickle protocol 2; tensors are `_rebuild_tensor_v2` calls whose
//!   storages are persistent ids `('storage', torch.FloatStorage, key, 'cpu', numel)`);
//! * `data/<key>`: the storages, f32 little-endian; `constants.pkl` (empty tuple), `version`,
//!   `byteorder`.
//!
//! Reading: libtorch does not check the CRC-32s of an archive's records, so [`verify_zip`]
//! checks the zip structure and every record's CRC before an archive is handed to it.
use super::zip::Zip;
pub use super::zip::{read_records, verify_crcs, verify_zip, zip_names, zip_structure};
use crate::model::mlp::Mlp;
use crate::model::sequential::{class_specs, ClassSpec, Module, MODULES};
use anyhow::{ensure, Result};
use tch::{Device, Kind};

/// The module `torch.jit.load` returns: `nn.Sequential` of Linear layers with `mlp.activation`
/// between them, in evaluation mode.
pub fn encode(mlp: &Mlp) -> Result<Vec<u8>> {
    ensure!(!mlp.weights.is_empty(), "an MLP without layers cannot be saved");
    encode_with(&Module::of_mlp(mlp), None)
}

/// Like `encode`, with the top-level module replaced by class `class_name` whose `forward` body is
/// `forward` (lines of TorchScript; the children are bound to `_0`, `_1`, … and the input is
/// `input`). For test fixtures of models that are *not* MLPs.
#[doc(hidden)]
pub fn encode_custom(mlp: &Mlp, class_name: &str, forward: &[&str]) -> Result<Vec<u8>> {
    encode_with(&Module::of_mlp(mlp), Some((class_name, forward)))
}

/// `torch.jit.script(nn.Sequential(*children))` as `torch.jit.save` writes it, in evaluation
/// mode. For test fixtures of models as practitioners have them (Dropout, BatchNorm1d, …).
#[doc(hidden)]
pub fn encode_sequential(children: &[Module]) -> Result<Vec<u8>> {
    ensure!(!children.is_empty(), "an empty nn.Sequential cannot be saved");
    encode_with(children, None)
}

fn encode_with(children: &[Module], custom: Option<(&str, &[&str])>) -> Result<Vec<u8>> {
    let specs = class_specs(children);
    let (top_module, top_class) = match custom {
        Some((class_name, _)) => ("__torch__".to_string(), class_name.to_string()),
        None => (format!("{MODULES}.container"), "Sequential".to_string()),
    };
    let mut files: Vec<(String, String)> =
        vec![(path_of(&top_module), top_code(&specs, &top_module, &top_class, custom))];
    for spec in &specs {
        let path = path_of(&spec.module);
        match files.iter_mut().find(|(p, _)| *p == path) {
            Some((_, text)) if !text.contains(&format!("class {}(", spec.class)) => {
                text.push_str(&spec.code)
            }
            Some(_) => {}
            None => files.push((path, spec.code.clone())),
        }
    }

    // data.pkl: the module object, its children and their tensors; the storages beside it.
    let mut pickle = Pickle::new();
    let mut storages: Vec<Vec<u8>> = Vec::new();
    pickle.object(&top_module, &top_class);
    pickle.common_attributes();
    for (i, spec) in specs.iter().enumerate() {
        pickle.str(&i.to_string());
        pickle.object(&spec.module, &spec.class);
        for (name, t, parameter) in &spec.tensors {
            let shape = t.size();
            let t = t.to_device(Device::Cpu).contiguous().flatten(0, -1);
            let (storage, bytes): (&str, Vec<u8>) = if t.kind() == Kind::Int64 {
                (
                    "LongStorage",
                    Vec::<i64>::try_from(&t)?.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            } else {
                let values = Vec::<f32>::try_from(t.to_kind(Kind::Float))?;
                ("FloatStorage", values.iter().flat_map(|v| v.to_le_bytes()).collect())
            };
            let numel = t.numel();
            pickle.str(name);
            pickle.tensor(&storages.len().to_string(), storage, &shape, numel, *parameter);
            storages.push(bytes);
        }
        pickle.common_attributes();
        pickle.end_object();
    }
    pickle.end_object();
    pickle.stop();

    let mut zip = Zip::default();
    for (key, bytes) in storages.iter().enumerate() {
        zip.add(&format!("archive/data/{key}"), bytes)?;
    }
    zip.add("archive/data.pkl", &pickle.out)?;
    for (path, text) in &files {
        zip.add(&format!("archive/code/{path}"), text.as_bytes())?;
    }
    let mut constants = Pickle::new();
    constants.out.push(b')');
    constants.stop();
    zip.add("archive/constants.pkl", &constants.out)?;
    zip.add("archive/version", b"3\n")?;
    zip.add("archive/byteorder", b"little")?;
    zip.finish()
}

/// The top-level class: the children as attributes `0`, `1`, … and a forward through them (or
/// the `custom` one).
fn top_code(
    specs: &[ClassSpec],
    top_module: &str,
    top_class: &str,
    custom: Option<(&str, &[&str])>,
) -> String {
    let top_qualified = format!("{top_module}.{top_class}");
    let mut top = format!(
        "class {top_class}(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n  \
         _is_full_backward_hook : NoneType\n"
    );
    for (i, spec) in specs.iter().enumerate() {
        top.push_str(&format!("  __annotations__[\"{i}\"] = {}.{}\n", spec.module, spec.class));
    }
    top.push_str(&format!("  def forward(self: {top_qualified},\n    input: Tensor) -> Tensor:\n"));
    for i in 0..specs.len() {
        top.push_str(&format!("    _{i} = getattr(self, \"{i}\")\n"));
    }
    if let Some((_, lines)) = custom {
        for line in lines {
            top.push_str(&format!("    {line}\n"));
        }
        return top;
    }
    let mut input = "input".to_string();
    for i in 0..specs.len() {
        if i + 1 == specs.len() {
            top.push_str(&format!("    return (_{i}).forward({input}, )\n"));
        } else {
            top.push_str(&format!("    input{i} = (_{i}).forward({input}, )\n"));
            input = format!("input{i}");
        }
    }
    top.push_str(&format!(
        "  def __len__(self: {top_qualified}) -> int:\n    return {}\n",
        specs.len()
    ));
    top
}

/// `__torch__.a.b` → `__torch__/a/b.py`.
fn path_of(module: &str) -> String {
    format!("{}.py", module.replace('.', "/"))
}

/// A pickle (protocol 2) of exactly the shapes TorchScript's unpickler reads.
struct Pickle {
    out: Vec<u8>,
}

impl Pickle {
    fn new() -> Self {
        Self { out: vec![0x80, 2] }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(b'c');
        self.out.extend(module.as_bytes());
        self.out.push(b'\n');
        self.out.extend(name.as_bytes());
        self.out.push(b'\n');
    }

    fn str(&mut self, s: &str) {
        self.out.push(b'X');
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }

    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend([b'K', v as u8]);
        } else if let Ok(v) = i32::try_from(v) {
            self.out.push(b'J');
            self.out.extend(v.to_le_bytes());
        } else {
            self.out.extend([0x8a, 8]); // LONG1, 8 bytes
            self.out.extend(v.to_le_bytes());
        }
    }

    fn ints(&mut self, values: &[i64]) {
        self.out.push(b'(');
        for &v in values {
            self.int(v);
        }
        self.out.push(b't');
    }

    /// `cls.__new__(cls)` followed by the opening of its state dict.
    fn object(&mut self, module: &str, class: &str) {
        self.global(module, class);
        self.out.extend([b')', 0x81, b'}', b'(']); // EMPTY_TUPLE NEWOBJ EMPTY_DICT MARK
    }

    /// `training = False` (evaluation mode) and `_is_full_backward_hook = None`.
    fn common_attributes(&mut self) {
        self.str("training");
        self.out.push(0x89); // NEWFALSE
        self.str("_is_full_backward_hook");
        self.out.push(b'N');
    }

    fn end_object(&mut self) {
        self.out.extend([b'u', b'b']); // SETITEMS BUILD
    }

    /// A contiguous tensor of `shape` whose storage (`FloatStorage`, `LongStorage`) is record
    /// `data/<key>`; a parameter requires gradients, a buffer does not.
    fn tensor(&mut self, key: &str, storage: &str, shape: &[i64], numel: usize, parameter: bool) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(b'(');
        self.out.push(b'(');
        self.str("storage");
        self.global("torch", storage);
        self.str(key);
        self.str("cpu");
        self.int(numel as i64);
        self.out.push(b't');
        self.out.push(b'Q'); // BINPERSID
        self.int(0); // storage offset
        self.ints(shape);
        let mut strides = vec![1i64; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        self.ints(&strides);
        self.out.push(if parameter { 0x88 } else { 0x89 }); // requires_grad
        self.global("collections", "OrderedDict");
        self.out.extend([b')', b'R']);
        self.out.extend([b't', b'R']);
    }

    fn stop(&mut self) {
        self.out.push(b'.');
    }
}

/// An uncompressed zip whose records' data start at multiples of 64 bytes (as PyTorch writes
/// them, padding with an extra field), with a fixed date so that equal models give equal files.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::mlp::Activation;
    use tch::Tensor;

    fn tiny(activation: Activation) -> Mlp {
        let mut rng = crate::seed::rng(3, "torchscript");
        Mlp::xavier(&[5, 4, 3, 2], activation, &mut rng, Device::Cpu).unwrap()
    }

    #[test]
    fn libtorch_loads_the_archive_with_named_parameters_and_the_same_forward() {
        for activation in Activation::ALL {
            let mut mlp = tiny(activation);
            mlp.biases[1] = Tensor::from_slice(&[0.5f32, -0.25, 1.0]);
            let bytes = encode(&mlp).unwrap();
            let names = zip_names(&bytes).unwrap();
            assert!(names.contains(&"archive/data.pkl".to_string()), "{names:?}");
            let module = tch::CModule::load_data(&mut bytes.as_slice()).unwrap();
            let params = module.named_parameters().unwrap();
            let params: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(params, ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]);
            let x =
                Tensor::from_slice(&(0..35).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>())
                    .view([7, 5]);
            let diff =
                (module.forward_ts(&[&x]).unwrap() - mlp.forward(&x)).abs().max().double_value(&[]);
            assert_eq!(diff, 0.0, "{activation:?}");
        }
    }

    #[test]
    fn equal_models_give_equal_files_and_records_are_aligned() {
        let mlp = tiny(Activation::Sigmoid);
        let a = encode(&mlp).unwrap();
        assert_eq!(a, encode(&mlp.clone()).unwrap());
        // Every local header's data starts at a multiple of 64.
        let mut at = 0;
        while u32::from_le_bytes(a[at..at + 4].try_into().unwrap()) == 0x0403_4b50 {
            let size = u32::from_le_bytes(a[at + 18..at + 22].try_into().unwrap()) as usize;
            let name = u16::from_le_bytes(a[at + 26..at + 28].try_into().unwrap()) as usize;
            let extra = u16::from_le_bytes(a[at + 28..at + 30].try_into().unwrap()) as usize;
            let data = at + 30 + name + extra;
            assert_eq!(data % 64, 0);
            at = data + size;
        }
        assert!(zip_names(b"PK\x03\x04 not really a zip").is_none());
    }

    #[test]
    fn a_single_layer_is_a_sequential_of_one_linear() {
        let mut rng = crate::seed::rng(1, "one");
        let mlp = Mlp::xavier(&[3, 2], Activation::Sigmoid, &mut rng, Device::Cpu).unwrap();
        let module = tch::CModule::load_data(&mut encode(&mlp).unwrap().as_slice()).unwrap();
        let x = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let diff =
            (module.forward_ts(&[&x]).unwrap() - mlp.forward(&x)).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0);
    }
}
