//! The tensors of a TorchScript module's tree, buffers included, read from its archive's
//! `data.pkl` (libtorch's C API, as tch exposes it, lists parameters only; BatchNorm's
//! `running_mean` and `running_var` are buffers). A small pickle machine for what
//! `torch.jit.save` writes: module objects (`GLOBAL`, `NEWOBJ`, a state dict, `BUILD`) and tensors
//! (`torch._utils._rebuild_tensor_v2` on a persistent storage id
//! `('storage', torch.FloatStorage, key, device, numel)`, whose bytes are record `data/<key>`).
use crate::model::torchscript::read_records;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use tch::{Kind, Tensor};

// Every value the pickles hold is kept (and shows in error messages), even those not read.
#[allow(dead_code)]
#[derive(Clone, Debug)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    /// A class instance: its class and its state.
    Object(String, Box<Value>),
    Storage(String, Kind),
    Tensor {
        storage: Box<Value>,
        offset: i64,
        shape: Vec<i64>,
        stride: Vec<i64>,
    },
    Mark,
}

/// Every tensor reachable from the archive's top module, named as `state_dict()` names them
/// (`1.running_mean`), as CPU tensors.
pub fn named_tensors(archive: &[u8]) -> Result<Vec<(String, Tensor)>> {
    let pkl = read_records(archive, |n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)?;
    let Some((pkl_name, data)) = pkl.into_iter().next() else {
        bail!("the archive has no data.pkl record");
    };
    let folder = pkl_name.trim_end_matches("data.pkl").to_string();
    let top = unpickle(&data).context("reading data.pkl")?;
    let mut found = Vec::new();
    walk(&top, "", &mut found);
    let storages = read_records(archive, |n| n.starts_with(&format!("{folder}data/")))?;
    let storages: HashMap<String, Vec<u8>> = storages.into_iter().collect();
    let mut tensors = Vec::new();
    for (name, value) in found {
        let Value::Tensor { storage, offset, shape, stride } = value else { continue };
        let Value::Storage(key, kind) = *storage else { continue };
        let bytes = storages
            .get(&format!("{folder}data/{key}"))
            .with_context(|| format!("tensor `{name}`'s storage data/{key} is missing"))?;
        let numel = (bytes.len() / kind.elt_size_in_bytes()) as i64;
        let extent: i64 =
            offset + shape.iter().zip(&stride).map(|(s, d)| (s - 1).max(0) * d).sum::<i64>();
        if shape.iter().all(|&s| s > 0) && (offset < 0 || extent >= numel) {
            bail!("tensor `{name}` ({shape:?} at offset {offset}) does not fit its storage data/{key} of {numel} values");
        }
        let t = Tensor::f_from_data_size(bytes, &[numel], kind)?
            .f_as_strided(&shape, &stride, Some(offset))?
            .contiguous();
        tensors.push((name, t));
    }
    Ok(tensors)
}

/// The tensors under a module object, with their dotted names.
fn walk(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let Value::Object(_, state) = value else { return };
    let Value::Dict(items) = state.as_ref() else { return };
    for (key, item) in items {
        let Value::Str(key) = key else { continue };
        match item {
            Value::Tensor { .. } => out.push((format!("{prefix}{key}"), item.clone())),
            Value::Object(..) => walk(item, &format!("{prefix}{key}."), out),
            _ => {}
        }
    }
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "BoolStorage" => Kind::Bool,
        "ByteStorage" => Kind::Uint8,
        _ => return None,
    })
}

fn ints(value: &Value) -> Option<Vec<i64>> {
    match value {
        Value::Tuple(v) | Value::List(v) => {
            v.iter().map(|x| if let Value::Int(i) = x { Some(*i) } else { None }).collect()
        }
        _ => None,
    }
}

/// `callable(*args)` for the callables torch's pickles use.
fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(module, name) = &callable else {
        bail!("REDUCE on {callable:?}");
    };
    let Value::Tuple(args) = args else { bail!("REDUCE with arguments {args:?}") };
    Ok(match (module.as_str(), name.as_str()) {
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let (Some(storage), Some(Value::Int(offset)), Some(shape), Some(stride)) =
                (args.first(), args.get(1), args.get(2).and_then(ints), args.get(3).and_then(ints))
            else {
                bail!("_rebuild_tensor_v2 with arguments {args:?}");
            };
            Value::Tensor { storage: Box::new(storage.clone()), offset: *offset, shape, stride }
        }
        ("torch._utils", "_rebuild_parameter") => args.into_iter().next().unwrap_or(Value::None),
        ("collections", "OrderedDict") => Value::Dict(Vec::new()),
        _ => Value::Object(format!("{module}.{name}"), Box::new(Value::Tuple(args))),
    })
}

struct Machine<'a> {
    data: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let bytes = self.data.get(self.at..self.at + n).context("the pickle ends early")?;
        self.at += n;
        Ok(bytes)
    }

    fn uint(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String> {
        let end = self.data[self.at..].iter().position(|&b| b == b'\n').context("unended line")?;
        let text = String::from_utf8_lossy(&self.data[self.at..self.at + end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().context("pop from an empty stack")
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self.stack.iter().rposition(|v| matches!(v, Value::Mark)).context("no MARK")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().context("empty stack")
    }
}

/// Runs the pickle `data` and returns its value.
fn unpickle(data: &[u8]) -> Result<Value> {
    let mut m = Machine { data, at: 0, stack: Vec::new(), memo: HashMap::new() };
    loop {
        let op = m.take(1)?[0];
        if op == b'.' {
            return m.pop();
        }
        step(&mut m, op).with_context(|| format!("opcode 0x{op:02x} at byte {}", m.at - 1))?;
    }
}

/// One opcode: those that change what is on the stack in place here, the others push a value.
fn step(m: &mut Machine, op: u8) -> Result<()> {
    match op {
        0x80 => m.take(1).map(drop),
        0x95 => m.take(8).map(drop),
        b'a' | b'e' => {
            let items = if op == b'a' { vec![m.pop()?] } else { m.pop_mark()? };
            if let Value::List(list) = m.top()? {
                list.extend(items);
            }
            Ok(())
        }
        b's' | b'u' => {
            let items = if op == b's' {
                let (v, k) = (m.pop()?, m.pop()?);
                vec![k, v]
            } else {
                m.pop_mark()?
            };
            if let Value::Dict(dict) = m.top()? {
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    dict.push((k, v));
                }
            }
            Ok(())
        }
        b'q' | b'r' | 0x94 => {
            let key = match op {
                b'q' => m.uint(1)? as u32,
                b'r' => m.uint(4)? as u32,
                _ => m.memo.len() as u32,
            };
            let top = m.top()?.clone();
            m.memo.insert(key, top);
            Ok(())
        }
        b'b' => {
            let state = m.pop()?;
            if let Value::Object(_, slot) = m.top()? {
                **slot = state;
            }
            Ok(())
        }
        _ => {
            let value = value_op(m, op)?;
            m.stack.push(value);
            Ok(())
        }
    }
}

/// The value an opcode pushes.
fn value_op(m: &mut Machine, op: u8) -> Result<Value> {
    Ok(match op {
        b'c' => Value::Global(m.line()?, m.line()?),
        0x93 => {
            let (name, module) = (m.pop()?, m.pop()?);
            let (Value::Str(module), Value::Str(name)) = (module, name) else {
                bail!("STACK_GLOBAL")
            };
            Value::Global(module, name)
        }
        b')' => Value::Tuple(Vec::new()),
        b']' => Value::List(Vec::new()),
        b'}' => Value::Dict(Vec::new()),
        b'(' => Value::Mark,
        b't' => Value::Tuple(m.pop_mark()?),
        b'l' => Value::List(m.pop_mark()?),
        0x85..=0x87 => {
            let n = (op - 0x84) as usize;
            let items = m.stack.split_off(m.stack.len().checked_sub(n).context("TUPLEn")?);
            Value::Tuple(items)
        }
        b'X' | 0x8c | 0x8d => {
            let n = match op {
                b'X' => m.uint(4)?,
                0x8c => m.uint(1)?,
                _ => m.uint(8)?,
            } as usize;
            Value::Str(String::from_utf8_lossy(m.take(n)?).into_owned())
        }
        b'K' => Value::Int(m.uint(1)? as i64),
        b'M' => Value::Int(m.uint(2)? as i64),
        b'J' => Value::Int(m.uint(4)? as u32 as i32 as i64),
        0x8a => {
            let n = m.uint(1)? as usize;
            let bytes = m.take(n)?.to_vec();
            let mut v: i64 = if bytes.last().is_some_and(|b| b & 0x80 != 0) { -1 } else { 0 };
            for b in bytes.iter().rev() {
                v = (v << 8) | i64::from(*b);
            }
            Value::Int(v)
        }
        b'G' => Value::Float(f64::from_be_bytes(m.take(8)?.try_into().expect("8 bytes"))),
        b'N' => Value::None,
        0x88 => Value::Bool(true),
        0x89 => Value::Bool(false),
        b'h' | b'j' => {
            let key = if op == b'h' { m.uint(1)? } else { m.uint(4)? } as u32;
            m.memo.get(&key).cloned().with_context(|| format!("memo {key} is empty"))?
        }
        b'Q' => match m.pop()? {
            Value::Tuple(pid) => match (pid.get(1), pid.get(2)) {
                (Some(Value::Global(_, class)), Some(Value::Str(key))) => {
                    let kind =
                        storage_kind(class).with_context(|| format!("storage type {class}"))?;
                    Value::Storage(key.clone(), kind)
                }
                _ => bail!("persistent id {pid:?}"),
            },
            other => bail!("persistent id {other:?}"),
        },
        b'R' => {
            let args = m.pop()?;
            let callable = m.pop()?;
            reduce(callable, args)?
        }
        0x81 => {
            m.pop()?;
            match m.pop()? {
                Value::Global(module, name) => {
                    Value::Object(format!("{module}.{name}"), Box::new(Value::None))
                }
                other => bail!("NEWOBJ of {other:?}"),
            }
        }
        _ => bail!("unsupported pickle opcode"),
    })
}
