//! The zip container of TorchScript archives: writing one (stored records, each record's data
//! aligned to 64 bytes, as PyTorch's writer does) and reading one with its structure and every
//! record's CRC-32 verified (libtorch itself does not check them).
use anyhow::{Context, Result};
use std::io::Read;

#[derive(Default)]
pub(super) struct Zip {
    out: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

const DOS_DATE_1980_01_01: u16 = 0x21;

impl Zip {
    pub(super) fn add(&mut self, name: &str, data: &[u8]) -> Result<()> {
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

    pub(super) fn finish(mut self) -> Result<Vec<u8>> {
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
