//! The serialized form of an [`Index`]: what Redis keeps in RDB files and Python in `.idx` files.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "IMGSCOUT"
//!      8     4  format version (u32): 1 for 64-bit codes, 2 for any width
//!     12     4  flags (u32, reserved, must be 0)
//!    (16     4  version 2 only: code width in bits (u32): 64, 128 or 256)
//!     16     8  sync threshold (u64)                      (offsets 4 later in version 2)
//!     24     8  next automatic id (u64)
//!     32     8  indexed entry count (u64)
//!     40     8  pending entry count (u64)
//!     48     .  entries: indexed ones in id order, then pending ones in queue order, each
//!               id (u64), hash (the code's words in order, u64 each), title length (u32),
//!               title bytes
//!      .     4  CRC-32 (IEEE) of every byte before it
//! ```
//! All integers are little-endian. 64-bit indexes are written as version 1, byte for byte what
//! builds before wider codes wrote, so files and RDB payloads move both ways between them;
//! wider ones as version 2, which older builds refuse by its version. Only entries are stored, not the search structures: those
//! are rebuilt on load (deterministically), so the format does not change when they do.
//!
//! Reading never trusts a length field for an allocation: buffers grow with the bytes actually
//! read, so a forged count or title length fails at the end of the input instead.

use std::io::{self, BufWriter, Read, Write};

use crate::columns::Columns;
use crate::hamming::Code;
use crate::{Error, ErrorCode, Index, Result};

pub const MAGIC: &[u8; 8] = b"IMGSCOUT";
/// The version 64-bit indexes are written in.
pub const VERSION: u32 = 1;
/// The version wider indexes are written in: version 1 plus the code width.
pub const WIDE_VERSION: u32 = 2;

/// An index of any width, as a file holds it: for faces that learn the width from the file.
#[derive(Debug, Clone)]
pub enum AnyIndex {
    Bits64(Index<u64>),
    Bits128(Index<[u64; 2]>),
    Bits256(Index<[u64; 4]>),
}

impl AnyIndex {
    /// An empty index of codes of `bits` (64, 128 or 256) with the given sync threshold.
    pub fn with_sync_threshold(bits: u32, threshold: usize) -> Result<AnyIndex> {
        Ok(match bits {
            64 => AnyIndex::Bits64(Index::with_sync_threshold(threshold)?),
            128 => AnyIndex::Bits128(Index::with_sync_threshold(threshold)?),
            256 => AnyIndex::Bits256(Index::with_sync_threshold(threshold)?),
            _ => return Err(Error::Invalid(ErrorCode::InvalidBits)),
        })
    }

    /// Reads an index of whatever width the input holds (see [`Index::read_from`]).
    pub fn read_from<R: Read>(reader: R) -> Result<AnyIndex> {
        let mut input = Crc {
            inner: reader,
            hasher: crc32fast::Hasher::new(),
        };
        let header = read_header(&mut input)?;
        Ok(match header.bits {
            64 => AnyIndex::Bits64(read_body(input, header)?),
            128 => AnyIndex::Bits128(read_body(input, header)?),
            _ => AnyIndex::Bits256(read_body(input, header)?),
        })
    }

    /// Bits in the index's codes.
    pub fn bits(&self) -> u32 {
        match self {
            AnyIndex::Bits64(_) => 64,
            AnyIndex::Bits128(_) => 128,
            AnyIndex::Bits256(_) => 256,
        }
    }
}

struct Crc<T> {
    inner: T,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

impl<C: Code> Index<C> {
    /// Writes the whole index (entries, pending queue, id counter, threshold) in the format
    /// described in this module.
    pub fn write_to<W: Write>(&self, writer: W) -> Result<()> {
        write(self, writer)
    }

    /// Reads an index written by [`Index::write_to`]. Truncated, corrupted or foreign input is
    /// an [`Error::Format`], and so is an index of another code width.
    pub fn read_from<R: Read>(reader: R) -> Result<Index<C>> {
        read(reader)
    }
}

pub fn write<C: Code, W: Write>(index: &Index<C>, writer: W) -> Result<()> {
    let mut out = Crc {
        inner: BufWriter::with_capacity(1 << 16, writer),
        hasher: crc32fast::Hasher::new(),
    };
    let indexed = index.len() as u64;
    let pending = index.pending_len() as u64;
    out.write_all(MAGIC)?;
    if C::BITS == 64 {
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
    } else {
        out.write_all(&WIDE_VERSION.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&C::BITS.to_le_bytes())?;
    }
    out.write_all(&(index.sync_threshold() as u64).to_le_bytes())?;
    out.write_all(&index.next_id().to_le_bytes())?;
    out.write_all(&indexed.to_le_bytes())?;
    out.write_all(&pending.to_le_bytes())?;
    for entry in index.entries() {
        let len = u32::try_from(entry.title.len())
            .map_err(|_| Error::Format(format!("title of id {} over 4 GiB", entry.id)))?;
        out.write_all(&entry.id.to_le_bytes())?;
        for w in 0..C::WORDS {
            out.write_all(&entry.hash.word(w).to_le_bytes())?;
        }
        out.write_all(&len.to_le_bytes())?;
        out.write_all(entry.title)?;
    }
    let crc = out.hasher.clone().finalize();
    let mut inner = out.inner;
    inner.write_all(&crc.to_le_bytes())?;
    inner.flush()?;
    Ok(())
}

fn truncated() -> Error {
    Error::Format("truncated input".into())
}

fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => truncated(),
        _ => Error::Io(e),
    })
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32> {
    let mut b = [0; 4];
    read_exact(r, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64<R: Read>(r: &mut R) -> Result<u64> {
    let mut b = [0; 8];
    read_exact(r, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// What the header says.
struct Header {
    bits: u32,
    threshold: usize,
    next_id: u64,
    counts: [u64; 2],
}

pub fn read<C: Code, R: Read>(reader: R) -> Result<Index<C>> {
    let mut input = Crc {
        inner: reader,
        hasher: crc32fast::Hasher::new(),
    };
    let header = read_header(&mut input)?;
    if header.bits != C::BITS {
        return Err(Error::Format(format!(
            "the index holds {}-bit codes, not {}-bit",
            header.bits,
            C::BITS
        )));
    }
    read_body(input, header)
}

fn read_header<R: Read>(input: &mut Crc<R>) -> Result<Header> {
    let mut magic = [0; 8];
    read_exact(input, &mut magic)?;
    if &magic != MAGIC {
        return Err(Error::Format("not an imgscout index (bad magic)".into()));
    }
    let version = read_u32(input)?;
    if version != VERSION && version != WIDE_VERSION {
        return Err(Error::Format(format!(
            "format version {version} is not supported (this build reads {VERSION} and {WIDE_VERSION})"
        )));
    }
    let flags = read_u32(input)?;
    if flags != 0 {
        return Err(Error::Format(format!("unknown flags {flags:#x}")));
    }
    let bits = if version == VERSION {
        64
    } else {
        read_u32(input)?
    };
    if ![64, 128, 256].contains(&bits) {
        return Err(Error::Format(format!("code width {bits} is not supported")));
    }
    let threshold = read_u64(input)?;
    let next_id = read_u64(input)?;
    let counts = [read_u64(input)?, read_u64(input)?];
    if next_id > crate::MAX_ID + 1 {
        return Err(Error::Format(format!("next id {next_id} out of range")));
    }
    let threshold = usize::try_from(threshold)
        .ok()
        .filter(|t| (1..=crate::MAX_SYNC_THRESHOLD).contains(t))
        .ok_or_else(|| Error::Format(format!("sync threshold {threshold} out of range")))?;
    Ok(Header {
        bits,
        threshold,
        next_id,
        counts,
    })
}

fn read_body<C: Code, R: Read>(mut input: Crc<R>, header: Header) -> Result<Index<C>> {
    let Header {
        threshold,
        next_id,
        counts,
        ..
    } = header;
    let mut parts = [Columns::default(), Columns::default()];
    let mut title = Vec::new();
    let mut words = [0u64; 4];
    for (part, &count) in parts.iter_mut().zip(&counts) {
        for _ in 0..count {
            let id = read_u64(&mut input)?;
            for w in &mut words[..C::WORDS] {
                *w = read_u64(&mut input)?;
            }
            let hash = C::from_words(&words[..C::WORDS]).expect("one word per 64 bits");
            let len = read_u32(&mut input)? as u64;
            title.clear();
            let got = (&mut input)
                .take(len)
                .read_to_end(&mut title)
                .map_err(Error::Io)?;
            if got as u64 != len {
                return Err(truncated());
            }
            part.push(id, hash, &title);
        }
    }
    let computed = input.hasher.clone().finalize();
    let mut inner = input.inner;
    let stored = read_u32(&mut inner)?;
    if stored != computed {
        return Err(Error::Format("checksum mismatch (corrupted data)".into()));
    }
    let mut extra = [0u8; 1];
    if inner.read(&mut extra).map_err(Error::Io)? != 0 {
        return Err(Error::Format("trailing bytes after the index".into()));
    }
    let [indexed, pending] = parts;
    Index::from_parts(threshold, next_id, indexed, pending)
}
