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
use crate::model::mlp::Mlp;
use crate::model::sequential::{class_specs, ClassSpec, Module, MODULES};
use anyhow::{ensure, Context, Result};
use std::io::Read;
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
#[derive(Default)]
struct Zip {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

const DOS_DATE_1980_01_01: u16 = 0x21;

impl Zip {
    fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
        let offset = u32::try_from(self.out.len());
        let size = u32::try_from(data.len());
        let (Ok(offset), Ok(size), Some(count)) = (offset, size, self.count.checked_add(1)) else {
            anyhow::bail!(
                "the model is too large for a TorchScript file without zip64 (over 4 GB)"
            );
        };
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();
        let unpadded = self.out.len() + 30 + name.len();
        let mut pad = (64 - unpadded % 64) % 64;
        if pad > 0 && pad < 4 {
            pad += 64;
        }
        let mut extra = Vec::new();
        if pad > 0 {
            extra.extend(b"FB");
            extra.extend(((pad - 4) as u16).to_le_bytes());
            extra.resize(pad, 0);
        }
        let header = |sig: u32, central: bool| {
            let mut h = sig.to_le_bytes().to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // version made by
            }
            h.extend(20u16.to_le_bytes()); // version needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(0u16.to_le_bytes()); // stored
            h.extend(0u16.to_le_bytes()); // time
            h.extend(DOS_DATE_1980_01_01.to_le_bytes());
            h.extend(crc.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend(size.to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h
        };
        let mut local = header(0x0403_4b50, false);
        local.extend((extra.len() as u16).to_le_bytes());
        local.extend(name.as_bytes());
        local.extend(&extra);
        self.out.extend(local);
        self.out.extend(data);
        let mut central = header(0x0201_4b50, true);
        central.extend(0u16.to_le_bytes()); // extra
        central.extend(0u16.to_le_bytes()); // comment
        central.extend(0u16.to_le_bytes()); // disk
        central.extend(0u16.to_le_bytes()); // internal attributes
        central.extend(0u32.to_le_bytes()); // external attributes
        central.extend(offset.to_le_bytes());
        central.extend(name.as_bytes());
        self.central.extend(central);
        self.count = count;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>> {
        let offset = u32::try_from(self.out.len());
        let size = u32::try_from(self.central.len());
        let (Ok(offset), Ok(size)) = (offset, size) else {
            anyhow::bail!(
                "the model is too large for a TorchScript file without zip64 (over 4 GB)"
            );
        };
        self.out.extend(&self.central);
        self.out.extend(0x0605_4b50u32.to_le_bytes());
        self.out.extend([0u8; 4]); // this disk, disk of the central directory
        self.out.extend(self.count.to_le_bytes());
        self.out.extend(self.count.to_le_bytes());
        self.out.extend(size.to_le_bytes());
        self.out.extend(offset.to_le_bytes());
        self.out.extend(0u16.to_le_bytes()); // comment
        Ok(self.out)
    }
}

/// The names of a zip archive's records (from its central directory), or None when `bytes` is
/// not a zip archive whose directory prunelab can read (truncated, corrupt). The records' data
/// are not checked: [`verify_zip`] does that.
pub fn zip_names(bytes: &[u8]) -> Option<Vec<String>> {
    Some(zip_records(bytes).ok()?.into_iter().map(|r| r.name).collect())
}

/// The names of a zip archive's records, after checking the archive's structure (its end
/// record, central directory and local headers, zip64 included) and every record's CRC-32:
/// [`zip_structure`] then [`verify_crcs`].
pub fn verify_zip(bytes: &[u8]) -> Result<Vec<String>> {
    let names = zip_structure(bytes)?;
    verify_crcs(bytes)?;
    Ok(names)
}

/// The names of a zip archive's records, after checking its structure: the end record, the
/// central directory, and each record's local header, which must agree with its directory entry
/// and whose data must end before the directory. The error says what is wrong and at which byte.
pub fn zip_structure(bytes: &[u8]) -> Result<Vec<String>> {
    let (records, directory_start) = zip_directory(bytes)?;
    for record in &records {
        record_data(bytes, record, directory_start)?;
    }
    Ok(records.into_iter().map(|r| r.name).collect())
}

/// Checks the CRC-32 of every record's data (libtorch does not), so that a damaged archive is
/// refused before libtorch reads it. The error names the record and its bytes.
pub fn verify_crcs(bytes: &[u8]) -> Result<()> {
    let (records, directory_start) = zip_directory(bytes)?;
    for record in &records {
        let (start, data) = record_data(bytes, record, directory_start)?;
        let name = &record.name;
        let crc = record_crc(data, record)
            .with_context(|| format!("record `{name}`'s data at byte {start} cannot be read"))?;
        if crc != record.crc {
            anyhow::bail!(
                "record `{name}` (data at bytes {start}..{}) has CRC-32 0x{crc:08x}, but the \
                 archive records 0x{:08x}",
                start + data.len(),
                record.crc
            );
        }
    }
    Ok(())
}

/// The (uncompressed) data of the records whose names `wanted` accepts, with their names.
pub fn read_records(bytes: &[u8], wanted: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
    let (records, directory_start) = zip_directory(bytes)?;
    let mut out = Vec::new();
    for record in records.iter().filter(|r| wanted(&r.name)) {
        let (_, data) = record_data(bytes, record, directory_start)?;
        let data = match record.method {
            8 => {
                let mut inflated = Vec::new();
                flate2::read::DeflateDecoder::new(data)
                    .take(record.size.saturating_add(1))
                    .read_to_end(&mut inflated)?;
                inflated
            }
            _ => data.to_vec(),
        };
        out.push((record.name.clone(), data));
    }
    Ok(out)
}

/// One record as the central directory describes it.
struct ZipRecord {
    name: String,
    /// Where its central directory entry starts.
    entry: usize,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local: u64,
}

const LOCAL_SIG: u32 = 0x0403_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const END_SIG: u32 = 0x0605_4b50;
const END64_LOCATOR_SIG: u32 = 0x0706_4b50;
const END64_SIG: u32 = 0x0606_4b50;

fn le(bytes: &[u8], at: usize, n: usize) -> Result<u64> {
    let field = at.checked_add(n).and_then(|end| bytes.get(at..end));
    let Some(field) = field else {
        anyhow::bail!(
            "it ends at byte {} but a {n}-byte field should start at byte {at}",
            bytes.len()
        )
    };
    Ok(field.iter().rev().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

fn zip_records(bytes: &[u8]) -> Result<Vec<ZipRecord>> {
    Ok(zip_directory(bytes)?.0)
}

/// The records of the central directory, and where the directory starts.
fn zip_directory(bytes: &[u8]) -> Result<(Vec<ZipRecord>, usize)> {
    let (count, start, size) = zip_end(bytes)?;
    let mut records = Vec::new();
    let mut at = start;
    for _ in 0..count {
        let record = central_entry(bytes, at)?;
        at = record.1;
        records.push(record.0);
    }
    if at as u64 != start as u64 + size {
        anyhow::bail!(
            "its central directory at byte {start} should take {size} bytes but its {count} \
             entries take {}",
            at - start
        );
    }
    Ok((records, start))
}

/// (record count, central directory start, central directory size) from the end records.
fn zip_end(bytes: &[u8]) -> Result<(u64, usize, u64)> {
    let lowest = bytes.len().saturating_sub(22 + 0xffff);
    let end = (lowest..bytes.len().saturating_sub(21)).rev().find(|&i| {
        le(bytes, i, 4).ok() == Some(u64::from(END_SIG))
            && le(bytes, i + 20, 2).is_ok_and(|comment| i + 22 + comment as usize == bytes.len())
    });
    let Some(end) = end else {
        anyhow::bail!("it has no end-of-central-directory record (truncated?)");
    };
    let mut fields = (le(bytes, end + 10, 2)?, le(bytes, end + 16, 4)?, le(bytes, end + 12, 4)?);
    let mut limit = end as u64;
    if end >= 20 && le(bytes, end - 20, 4)? == u64::from(END64_LOCATOR_SIG) {
        let end64 = le(bytes, end - 12, 8)?;
        let at = usize::try_from(end64).unwrap_or(usize::MAX);
        if end64 >= end as u64 - 20 || le(bytes, at, 4)? != u64::from(END64_SIG) {
            anyhow::bail!("its zip64 end record locator at byte {} points to byte {end64}, where no zip64 end record is", end - 20);
        }
        fields = (le(bytes, at + 32, 8)?, le(bytes, at + 48, 8)?, le(bytes, at + 40, 8)?);
        limit = end64;
    }
    let (count, start, size) = fields;
    if start.checked_add(size).is_none_or(|stop| stop > limit) {
        anyhow::bail!(
            "its central directory (byte {start}, {size} bytes) does not end before the end record at byte {limit}"
        );
    }
    Ok((count, start as usize, size))
}

/// The central directory entry at `at`, and where the next one starts.
fn central_entry(bytes: &[u8], at: usize) -> Result<(ZipRecord, usize)> {
    if le(bytes, at, 4)? != u64::from(CENTRAL_SIG) {
        anyhow::bail!("the central directory entry at byte {at} has no entry signature");
    }
    let field = |offset: usize, n: usize| le(bytes, at + offset, n);
    let (name_len, extra_len, comment_len) =
        (field(28, 2)? as usize, field(30, 2)? as usize, field(32, 2)? as usize);
    let name = bytes
        .get(at + 46..at + 46 + name_len)
        .with_context(|| format!("the central directory entry at byte {at} is cut off"))?;
    let mut record = ZipRecord {
        name: String::from_utf8_lossy(name).into_owned(),
        entry: at,
        flags: field(8, 2)? as u16,
        method: field(10, 2)? as u16,
        crc: field(16, 4)? as u32,
        compressed: field(20, 4)?,
        size: field(24, 4)?,
        local: field(42, 4)?,
    };
    let extra_at = at + 46 + name_len;
    let extra = bytes
        .get(extra_at..extra_at + extra_len)
        .with_context(|| format!("the central directory entry at byte {at} is cut off"))?;
    apply_zip64(extra, &mut record)?;
    Ok((record, extra_at + extra_len + comment_len))
}

/// Replaces the saturated 32-bit fields of `record` with their zip64 extra field's values.
fn apply_zip64(extra: &[u8], record: &mut ZipRecord) -> Result<()> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (le(extra, at, 2)?, le(extra, at + 2, 2)? as usize);
        if id == 1 {
            let mut field = at + 4;
            for value in [&mut record.size, &mut record.compressed, &mut record.local] {
                if *value == 0xffff_ffff && field + 8 <= at + 4 + len {
                    *value = le(extra, field, 8)?;
                    field += 8;
                }
            }
        }
        at += 4 + len;
    }
    Ok(())
}

/// Where `record`'s data start, and the data, after checking its local header against its
/// central directory entry.
fn record_data<'a>(
    bytes: &'a [u8],
    record: &ZipRecord,
    directory_start: usize,
) -> Result<(usize, &'a [u8])> {
    let name = &record.name;
    let at = usize::try_from(record.local).unwrap_or(usize::MAX);
    if le(bytes, at, 4).ok() != Some(u64::from(LOCAL_SIG)) {
        anyhow::bail!(
            "record `{name}` (directory entry at byte {}) points to byte {at}, where no local header is",
            record.entry
        );
    }
    let field = |offset: usize, n: usize| le(bytes, at + offset, n);
    let (name_len, extra_len) = (field(26, 2)? as usize, field(28, 2)? as usize);
    if bytes.get(at + 30..at + 30 + name_len) != Some(record.name.as_bytes()) {
        anyhow::bail!("record `{name}`'s local header at byte {at} names another record");
    }
    let described = record.flags & 0x0008 == 0; // else a data descriptor follows the data
    let sizes = [(field(18, 4)?, record.compressed), (field(22, 4)?, record.size)];
    let sizes_agree =
        sizes.iter().all(|&(local, central)| local == 0xffff_ffff || local == central);
    if field(8, 2)? != u64::from(record.method)
        || described && (field(14, 4)? != u64::from(record.crc) || !sizes_agree)
    {
        anyhow::bail!(
            "record `{name}`'s local header at byte {at} disagrees with its directory entry"
        );
    }
    let start = at + 30 + name_len + extra_len;
    let stop = start as u64 + record.compressed;
    if stop > directory_start as u64 {
        anyhow::bail!(
            "record `{name}`'s data (byte {start}, {} bytes) runs past the central directory at byte {directory_start}",
            record.compressed
        );
    }
    Ok((start, &bytes[start..stop as usize]))
}

/// The CRC-32 of a record's uncompressed data.
fn record_crc(data: &[u8], record: &ZipRecord) -> Result<u32> {
    let mut crc = flate2::Crc::new();
    match record.method {
        0 if record.compressed == record.size => crc.update(data),
        0 => anyhow::bail!(
            "it is stored with sizes {} and {} that differ",
            record.compressed,
            record.size
        ),
        8 => {
            let mut inflated = Vec::new();
            flate2::read::DeflateDecoder::new(data)
                .take(record.size.saturating_add(1))
                .read_to_end(&mut inflated)?;
            anyhow::ensure!(
                inflated.len() as u64 == record.size,
                "it inflates to {} bytes, not the {} recorded",
                inflated.len(),
                record.size
            );
            crc.update(&inflated);
        }
        method => {
            anyhow::bail!("compression method {method} is not one a TorchScript archive uses")
        }
    }
    Ok(crc.sum())
}

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
