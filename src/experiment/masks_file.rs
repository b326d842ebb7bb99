//! The masks of a run: `models/<run_id>/masks.safetensors`, which units or inputs every mask of
//! every method and budget kept, bit-packed so that a 1000 × 3072 edge mask takes 384 KB.
//!
//! One u8 tensor per method and budget, named `<method>/<kn>:<ke>` (kept units : kept inputs per
//! unit of the matched budget), its first axis the mask sample: node masks [masks, ⌈H/8⌉] (bit h
//! is unit h), edge masks [masks, H, ⌈D/8⌉] (bit j of row h is input j of unit h), bits in
//! numpy's default (big-endian) order, so `numpy.unpackbits(t, axis=-1, count=H or D)` unpacks
//! them. Teacher-student runs add `teacher_block` (i64 [K]): the teacher unit each student unit
//! overlaps most, argmax_n |R_in|. The metadata gives `prunelab.layer`, `prunelab.hidden` (H),
//! `prunelab.inputs` (D) and, with `teacher_block`, `prunelab.teachers` (M). Reweighting does not
//! change a mask, so each is written once.
use crate::files::write_atomic;
use crate::model::io::{parse_safetensors, serialize_sorted};
use crate::prune::sweep::Batch;
use crate::prune::Mask;
use anyhow::{bail, ensure, Context, Result};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// The file name in a run's model folder.
pub const FILE: &str = "masks.safetensors";
/// The tensor of the student units' teacher blocks.
pub const TEACHER_BLOCK: &str = "teacher_block";

/// The masks of one layer, collected batch by batch and written at the end of the run.
pub struct MaskRecord {
    pub layer: String,
    pub hidden: usize,
    pub inputs: usize,
    /// Tensor name → the masks, in sample order.
    pub masks: BTreeMap<String, Vec<Mask>>,
    /// Teacher-student runs: the teacher unit each student unit overlaps most, and the number of
    /// teacher units M.
    pub teacher_block: Option<(Vec<usize>, usize)>,
}

impl MaskRecord {
    pub fn new(layer: &str, hidden: usize, inputs: usize) -> Self {
        let masks = BTreeMap::new();
        Self { layer: layer.to_string(), hidden, inputs, masks, teacher_block: None }
    }

    /// The tensor name of a method's masks at a budget.
    pub fn name(method: crate::prune::Method, nodes: usize, edges: usize) -> String {
        format!("{method}/{nodes}:{edges}")
    }

    /// Adds the masks of `batch` (once per method and budget).
    pub fn add(&mut self, batch: &Batch) {
        let name = Self::name(batch.method, batch.budget.nodes, batch.budget.edges);
        self.masks.entry(name).or_insert_with(|| batch.masks.to_vec());
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut entries: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, masks) in &self.masks {
            let (shape, bytes) = self.pack(masks);
            entries.push((name.clone(), shape, bytes));
        }
        if let Some((blocks, _)) = &self.teacher_block {
            let bytes = blocks.iter().flat_map(|&b| (b as i64).to_le_bytes()).collect();
            entries.push((TEACHER_BLOCK.into(), vec![blocks.len()], bytes));
        }
        let views = entries
            .iter()
            .map(|(name, shape, bytes)| {
                let dtype = if name == TEACHER_BLOCK { Dtype::I64 } else { Dtype::U8 };
                Ok((name.as_str(), TensorView::new(dtype, shape.clone(), bytes)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let teachers =
            self.teacher_block.as_ref().map(|(_, m)| ("prunelab.teachers", m.to_string()));
        let metadata: BTreeMap<String, String> = [
            ("format", "np".to_string()),
            ("prunelab.layer", self.layer.clone()),
            ("prunelab.hidden", self.hidden.to_string()),
            ("prunelab.inputs", self.inputs.to_string()),
        ]
        .into_iter()
        .chain(teachers)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let data = serialize_sorted(views, &metadata)
            .with_context(|| format!("encoding {}", path.display()))?;
        write_atomic(path, &data)
    }

    /// The shape and packed bytes of one tensor of masks.
    fn pack(&self, masks: &[Mask]) -> (Vec<usize>, Vec<u8>) {
        let (h, d) = (self.hidden, self.inputs);
        let mut bytes = Vec::new();
        let node = matches!(masks.first(), Some(Mask::Nodes(_)));
        for mask in masks {
            match mask {
                Mask::Nodes(units) => bytes.extend(pack_bits(units, h)),
                Mask::Edges(rows) => rows.iter().for_each(|r| bytes.extend(pack_bits(r, d))),
            }
        }
        let shape = if node {
            vec![masks.len(), h.div_ceil(8)]
        } else {
            vec![masks.len(), h, d.div_ceil(8)]
        };
        (shape, bytes)
    }

    /// Reads a file written by [`Self::write`].
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (file, metadata) = parse_safetensors(path, &bytes)?;
        let number = |key: &str| -> Result<usize> {
            metadata.get(key).and_then(|v| v.parse().ok()).with_context(|| {
                format!("{} has no number `{key}` in its metadata", path.display())
            })
        };
        let layer = metadata.get("prunelab.layer").cloned().unwrap_or_default();
        let mut record = Self::new(&layer, number("prunelab.hidden")?, number("prunelab.inputs")?);
        for (name, view) in file.tensors() {
            if name == TEACHER_BLOCK {
                let blocks = view.data().chunks_exact(8);
                let blocks = blocks.map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
                let m = number("prunelab.teachers")?;
                record.teacher_block = Some((blocks.map(|b| b as usize).collect(), m));
                continue;
            }
            let masks = record
                .unpack(view.shape(), view.data())
                .with_context(|| format!("{}: tensor `{name}`", path.display()))?;
            record.masks.insert(name, masks);
        }
        Ok(record)
    }

    fn unpack(&self, shape: &[usize], data: &[u8]) -> Result<Vec<Mask>> {
        let (h, d) = (self.hidden, self.inputs);
        let row_bytes = |n: usize| n.div_ceil(8);
        match shape {
            [count, w] if *w == row_bytes(h) && data.len() == count * w => {
                Ok(data.chunks_exact(*w).map(|c| Mask::Nodes(unpack_bits(c, h))).collect())
            }
            [count, rows, w] if *rows == h && *w == row_bytes(d) => {
                ensure!(data.len() == count * rows * w, "its data does not match its shape");
                let per_mask = data.chunks_exact(rows * w);
                Ok(per_mask
                    .map(|m| Mask::Edges(m.chunks_exact(*w).map(|r| unpack_bits(r, d)).collect()))
                    .collect())
            }
            _ => bail!("its shape {shape:?} is not that of node or edge masks of H = {h}, D = {d}"),
        }
    }
}

/// The set bits of `kept` out of `n`, most significant bit first.
fn pack_bits(kept: &[usize], n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n.div_ceil(8)];
    for &i in kept {
        out[i / 8] |= 0x80 >> (i % 8);
    }
    out
}

fn unpack_bits(bytes: &[u8], n: usize) -> Vec<usize> {
    (0..n).filter(|&i| bytes[i / 8] & (0x80 >> (i % 8)) != 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prune::select::random_subset;
    use crate::prune::RandomVariant;

    #[test]
    fn masks_read_back_as_written() {
        let mut rng = crate::seed::rng(3, "masks");
        let (h, d) = (6, 13);
        let mut record = MaskRecord::new("w", h, d);
        let nodes: Vec<Mask> = (0..5)
            .map(|_| Mask::Nodes(random_subset(h, 2, RandomVariant::Exact, &mut rng)))
            .collect();
        let edges: Vec<Mask> = (0..4)
            .map(|_| {
                Mask::Edges(
                    (0..h)
                        .map(|_| random_subset(d, 5, RandomVariant::Bernoulli, &mut rng))
                        .collect(),
                )
            })
            .collect();
        record.masks.insert("dpp_node/2:4".into(), nodes.clone());
        record.masks.insert("random_edge/2:4".into(), edges.clone());
        record.teacher_block = Some((vec![0, 1, 1, 0, 1, 0], 2));
        let dir = std::env::temp_dir().join(format!("prunelab-masks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(FILE);
        record.write(&path).unwrap();
        let back = MaskRecord::read(&path).unwrap();
        assert_eq!((back.hidden, back.inputs, back.layer.as_str()), (h, d, "w"));
        assert_eq!(back.masks["dpp_node/2:4"], nodes);
        assert_eq!(back.masks["random_edge/2:4"], edges);
        assert_eq!(back.teacher_block, record.teacher_block);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bits_are_packed_most_significant_first() {
        assert_eq!(pack_bits(&[0, 9], 10), [0x80, 0x40]);
        assert_eq!(unpack_bits(&[0x80, 0x40], 10), [0, 9]);
    }
}
