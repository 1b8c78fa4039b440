//! `imgscout._core`: the mvptree index as a Python class.
//!
//! This crate only translates: arguments arrive already validated by the pure-Python layer
//! (`python/imgscout`), core errors become Python exceptions, and panics become `RuntimeError`
//! instead of escaping as `PanicException`. The index sits behind a `RwLock` so that queries
//! from several Python threads run in parallel while the GIL is released.
//!
//! One class serves every code width: it holds the core index of its width, and each method
//! is written once over [`Code`] and expanded per width by `each_width!` (below). Codes cross as an
//! int (64 bits) or as bytes in text order (wider: byte 0 is the first two hex digits), batches
//! as a `uint64` vector or a `uint8` matrix of one row per code.

use std::ffi::c_char;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use mvptree::format::AnyIndex;
use mvptree::{Code, Error, Index as CoreIndex, InfoValue, Match, Pair, PairsCursor};

use crate::errors::to_py_err;

mod errors;

use numpy::{
    PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyInt, PyList, PyString, PyTuple, PyType};

/// `(title, id, distance)` with the title still as bytes: titles are copied out under the
/// lock and decoded once the GIL is back.
type RawMatch = (Box<[u8]>, u64, u32);
type RangeArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
);
type KnnArrays<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<i32>>);

/// A code as the Python layer hands it over and gets it back.
trait PyCode: Code {
    /// One code: an int for 64 bits, `bytes` of `BITS / 8` in text order for wider ones.
    fn one(value: &Bound<'_, PyAny>) -> PyResult<Self>;
    /// A batch: a `uint64` vector for 64 bits, a C-contiguous `uint8` matrix of `BITS / 8`
    /// columns for wider ones.
    fn many(values: &Bound<'_, PyAny>) -> PyResult<Vec<Self>>;
    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>>;
}

impl PyCode for u64 {
    fn one(value: &Bound<'_, PyAny>) -> PyResult<Self> {
        value.extract()
    }

    fn many(values: &Bound<'_, PyAny>) -> PyResult<Vec<Self>> {
        let array: PyReadonlyArray1<'_, u64> = values.extract()?;
        Ok(array.as_slice()?.to_vec())
    }

    fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.into_pyobject(py)?.into_any())
    }
}

/// The code of `bytes` (text order: word 0 is the first 8 bytes, most significant first).
fn code_of_bytes<C: Code>(bytes: &[u8]) -> PyResult<C> {
    let size = C::BITS as usize / 8;
    if bytes.len() != size {
        return Err(PyValueError::new_err(format!(
            "a {}-bit hash is {size} bytes, got {}",
            C::BITS,
            bytes.len()
        )));
    }
    let words: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|w| u64::from_be_bytes(w.try_into().expect("8 bytes")))
        .collect();
    Ok(C::from_words(&words).expect("one word per 8 bytes"))
}

macro_rules! wide_py_code {
    ($words:literal) => {
        impl PyCode for [u64; $words] {
            fn one(value: &Bound<'_, PyAny>) -> PyResult<Self> {
                code_of_bytes(&value.extract::<PyBackedBytes>()?)
            }

            fn many(values: &Bound<'_, PyAny>) -> PyResult<Vec<Self>> {
                let array: PyReadonlyArray2<'_, u8> = values.extract()?;
                if array.shape()[1] != $words * 8 {
                    return Err(PyValueError::new_err(format!(
                        "{}-bit hashes are rows of {} bytes, got {}",
                        $words * 64,
                        $words * 8,
                        array.shape()[1]
                    )));
                }
                array
                    .as_slice()?
                    .chunks_exact($words * 8)
                    .map(code_of_bytes)
                    .collect()
            }

            fn to_py<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let bytes: Vec<u8> = self.iter().flat_map(|w| w.to_be_bytes()).collect();
                Ok(PyBytes::new(py, &bytes).into_any())
            }
        }
    };
}

wide_py_code!(2);
wide_py_code!(4);

/// Runs `body`, turning a panic (a bug in the core or here) into `RuntimeError` so that
/// callers can rely on ordinary exception handling.
fn guarded<T>(body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Err(PyRuntimeError::new_err(format!(
            "imgscout internal error (please report): {why}"
        )))
    })
}

/// Titles are UTF-8 on the way in; bytes that are not (written by another client of a Redis
/// key, say) come back as lone surrogates, which the Python layer encodes back to the same
/// bytes, so every title round-trips.
fn decode_title<'py>(py: Python<'py>, title: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let length = isize::try_from(title.len())
        .map_err(|_| PyValueError::new_err("title too long for Python"))?;
    // SAFETY: the pointer and length describe a live byte slice; PyUnicode_DecodeUTF8 copies
    // it and returns a new reference or NULL with an exception set.
    unsafe {
        let raw = pyo3::ffi::PyUnicode_DecodeUTF8(
            title.as_ptr() as *const c_char,
            length,
            c"surrogateescape".as_ptr(),
        );
        Ok(Bound::from_owned_ptr_or_err(py, raw)?.cast_into_unchecked())
    }
}

fn matches_to_py<'py>(py: Python<'py>, raw: Vec<RawMatch>) -> PyResult<Vec<MatchTuple<'py>>> {
    raw.into_iter()
        .map(|(title, id, distance)| Ok((decode_title(py, &title)?, id, distance)))
        .collect()
}

type MatchTuple<'py> = (Bound<'py, PyString>, u64, u32);

/// `(pairs, next cursor)`: one page of the self-join.
type PairsPage = (Vec<(u64, u64, u32)>, Option<String>);

/// `(id, hash, title, pending)`.
type EntryTuple<'py> = (u64, Bound<'py, PyAny>, Bound<'py, PyString>, bool);

fn with_titles<C: Code>(index: &CoreIndex<C>, found: Vec<Match>) -> Vec<RawMatch> {
    found
        .into_iter()
        .map(|m| {
            let title = index
                .lookup(m.id)
                .expect("every match names an entry of the index");
            (title.into(), m.id, m.distance)
        })
        .collect()
}

static SAVE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
/// folder: a crash at any point leaves either the old file or the new one, never a torn one.
fn save_atomically<C: Code>(index: &CoreIndex<C>, path: &Path) -> Result<(), Error> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a file path: {}", path.display()),
        )
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        SAVE_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = folder.join(temporary_name);
    let result = (|| -> Result<(), Error> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        let mut writer = BufWriter::new(file);
        index.write_to(&mut writer)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, path)?;
        // The rename itself is durable only once the folder is synced.
        File::open(folder)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn load_file(path: &Path) -> Result<AnyIndex, Error> {
    let mut reader = BufReader::new(File::open(path)?);
    let index = AnyIndex::read_from(&mut reader).map_err(|error| match error {
        Error::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => {
            Error::Format("file is truncated".into())
        }
        other => other,
    })?;
    let mut probe = [0u8; 1];
    if reader.read(&mut probe)? != 0 {
        return Err(Error::Format("unexpected data after the index".into()));
    }
    Ok(index)
}

/// The core index of one code width.
enum Inner {
    Bits64(RwLock<CoreIndex<u64>>),
    Bits128(RwLock<CoreIndex<[u64; 2]>>),
    Bits256(RwLock<CoreIndex<[u64; 4]>>),
}

/// `$body` once per width, with `$lock` bound to that width's `RwLock<Index<C>>`: each method
/// is written once, over `Code`.
macro_rules! each_width {
    ($inner:expr, $lock:ident => $body:expr) => {
        match $inner {
            Inner::Bits64($lock) => $body,
            Inner::Bits128($lock) => $body,
            Inner::Bits256($lock) => $body,
        }
    };
}

/// The code `value` names, at the width of `lock`'s index.
fn code_for<C: PyCode>(_lock: &RwLock<CoreIndex<C>>, value: &Bound<'_, PyAny>) -> PyResult<C> {
    C::one(value)
}

/// The codes `values` names, at the width of `lock`'s index.
fn codes_for<C: PyCode>(
    _lock: &RwLock<CoreIndex<C>>,
    values: &Bound<'_, PyAny>,
) -> PyResult<Vec<C>> {
    C::many(values)
}

/// Short reads take the lock with the GIL held when it is free; otherwise they wait for it
/// with the GIL released, so a long writer never stalls every Python thread.
fn read_quick<C: Code, T: Send>(
    lock: &RwLock<CoreIndex<C>>,
    py: Python<'_>,
    body: impl FnOnce(&CoreIndex<C>) -> T + Send,
) -> PyResult<T> {
    guarded(|| {
        if let Ok(index) = lock.try_read() {
            return Ok(body(&index));
        }
        Ok(py.detach(|| body(&lock.read().unwrap_or_else(PoisonError::into_inner))))
    })
}

fn read_detached<C: Code, T: Send>(
    lock: &RwLock<CoreIndex<C>>,
    py: Python<'_>,
    body: impl FnOnce(&CoreIndex<C>) -> T + Send,
) -> PyResult<T> {
    guarded(|| Ok(py.detach(|| body(&lock.read().unwrap_or_else(PoisonError::into_inner)))))
}

fn write_detached<C: Code, T: Send>(
    lock: &RwLock<CoreIndex<C>>,
    py: Python<'_>,
    body: impl FnOnce(&mut CoreIndex<C>) -> T + Send,
) -> PyResult<T> {
    guarded(|| Ok(py.detach(|| body(&mut lock.write().unwrap_or_else(PoisonError::into_inner)))))
}

/// The core index, shared by Python threads. `frozen`: Python never borrows it mutably, all
/// mutation goes through the lock.
#[pyclass(module = "imgscout._core", name = "Index", frozen)]
struct PyIndex {
    inner: Inner,
}

impl PyIndex {
    /// The 64-bit index and the arguments of the common single query, a plain int hash and
    /// a plain int radius (capped at [`mvptree::MAX_RADIUS`]); `None` for anything else, which
    /// the Python layer's parsers then take (and word the errors of).
    fn plain_query(
        &self,
        hash: &Bound<'_, PyAny>,
        radius: &Bound<'_, PyAny>,
    ) -> Option<(&RwLock<CoreIndex<u64>>, u64, u32)> {
        if !hash.is_exact_instance_of::<PyInt>() {
            return None;
        }
        self.plain_radius(hash.extract::<u64>().ok()?, radius)
    }

    /// [`PyIndex::plain_query`] for a batch of one given as a 1-D uint64 array (FAISS users
    /// pass `xq[i:i + 1]`).
    fn plain_query_of_one(
        &self,
        hashes: &Bound<'_, PyAny>,
        radius: &Bound<'_, PyAny>,
    ) -> Option<(&RwLock<CoreIndex<u64>>, u64, u32)> {
        let array = hashes.cast::<PyArray1<u64>>().ok()?;
        if array.len() != 1 {
            return None;
        }
        self.plain_radius(array.get_owned([0])?, radius)
    }

    fn plain_radius(
        &self,
        hash: u64,
        radius: &Bound<'_, PyAny>,
    ) -> Option<(&RwLock<CoreIndex<u64>>, u64, u32)> {
        let Inner::Bits64(lock) = &self.inner else {
            return None;
        };
        if !radius.is_exact_instance_of::<PyInt>() {
            return None;
        }
        let radius = radius.extract::<u64>().ok()?;
        Some((
            lock,
            hash,
            radius.min(u64::from(mvptree::MAX_RADIUS)) as u32,
        ))
    }
}

#[pymethods]
impl PyIndex {
    #[new]
    #[pyo3(signature = (sync_threshold = mvptree::DEFAULT_SYNC_THRESHOLD, bits = 64))]
    fn new(sync_threshold: usize, bits: u32) -> PyResult<Self> {
        guarded(|| {
            let inner = match bits {
                64 => Inner::Bits64(RwLock::new(
                    CoreIndex::with_sync_threshold(sync_threshold).map_err(to_py_err)?,
                )),
                128 => Inner::Bits128(RwLock::new(
                    CoreIndex::with_sync_threshold(sync_threshold).map_err(to_py_err)?,
                )),
                256 => Inner::Bits256(RwLock::new(
                    CoreIndex::with_sync_threshold(sync_threshold).map_err(to_py_err)?,
                )),
                other => {
                    return Err(PyValueError::new_err(format!(
                        "bits must be 64, 128 or 256, not {other}"
                    )))
                }
            };
            Ok(PyIndex { inner })
        })
    }

    /// Bits in this index's codes.
    #[getter]
    fn bits(&self) -> u32 {
        each_width!(&self.inner, lock => code_bits(lock))
    }

    #[getter]
    fn sync_threshold(&self, py: Python<'_>) -> PyResult<usize> {
        each_width!(&self.inner, lock => read_quick(lock, py, |index| index.sync_threshold()))
    }

    fn set_sync_threshold(&self, py: Python<'_>, threshold: usize) -> PyResult<()> {
        each_width!(&self.inner, lock => {
            write_detached(lock, py, |index| index.set_sync_threshold(threshold))?
                .map_err(to_py_err)
        })
    }

    #[getter]
    fn next_id(&self, py: Python<'_>) -> PyResult<u64> {
        each_width!(&self.inner, lock => read_quick(lock, py, |index| index.next_id()))
    }

    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        each_width!(&self.inner, lock => read_quick(lock, py, |index| index.pending_len()))
    }

    #[pyo3(signature = (hash, title, id = None))]
    fn add(
        &self,
        py: Python<'_>,
        hash: &Bound<'_, PyAny>,
        title: PyBackedBytes,
        id: Option<u64>,
    ) -> PyResult<u64> {
        each_width!(&self.inner, lock => {
            let hash = code_for(lock, hash)?;
            write_detached(lock, py, |index| index.add(hash, &title, id))?.map_err(to_py_err)
        })
    }

    #[pyo3(signature = (hashes, titles, ids = None))]
    fn add_many<'py>(
        &self,
        py: Python<'py>,
        hashes: &Bound<'py, PyAny>,
        titles: Vec<PyBackedBytes>,
        ids: Option<PyReadonlyArray1<'py, u64>>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let ids = ids
            .map(|ids| ids.as_slice().map(<[u64]>::to_vec))
            .transpose()?;
        each_width!(&self.inner, lock => {
            let hashes = codes_for(lock, hashes)?;
            if titles.len() != hashes.len()
                || ids.as_ref().is_some_and(|ids| ids.len() != hashes.len())
            {
                return Err(PyValueError::new_err(
                    "hashes, titles and ids must have the same length",
                ));
            }
            let assigned = write_detached(lock, py, |index| {
                let entries = hashes.iter().zip(&titles).enumerate().map(|(at, (&hash, title))| {
                    (hash, &title[..], ids.as_ref().map(|ids| ids[at]))
                });
                index.add_many(entries)
            })?;
            Ok(PyArray1::from_vec(py, assigned.map_err(to_py_err)?))
        })
    }

    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        each_width!(&self.inner, lock => write_detached(lock, py, |index| index.sync()))
    }

    #[pyo3(signature = (hash, radius, limit = None, max_rows = mvptree::DEFAULT_MAX_ROWS))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
        radius: u32,
        limit: Option<usize>,
        max_rows: usize,
    ) -> PyResult<Vec<MatchTuple<'py>>> {
        let raw = each_width!(&self.inner, lock => {
            let hash = code_for(lock, hash)?;
            read_detached(lock, py, |index| {
                index
                    .query_bounded(hash, radius, limit, max_rows)
                    .map(|found| with_titles(index, found))
            })?
        });
        matches_to_py(py, raw.map_err(to_py_err)?)
    }

    /// The common call, `query(int, int)` on a 64-bit index, in one step: `Match` tuples
    /// built here, the search run with the interpreter held when the planner prices it below
    /// [`QUICK_QUERY_NS`] (releasing and taking it back costs more). `None` when the
    /// arguments are anything else, or the index is wider: the Python layer then parses them.
    fn query_fast<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
        radius: &Bound<'py, PyAny>,
        max_rows: usize,
    ) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some((lock, hash, radius)) = self.plain_query(hash, radius) else {
            return Ok(None);
        };
        let search = |index: &CoreIndex| {
            index
                .query_bounded(hash, radius, None, max_rows)
                .map(|found| with_titles(index, found))
        };
        let raw = guarded(|| {
            if let Ok(index) = lock.try_read() {
                if index.range_cost_ns(radius) < QUICK_QUERY_NS {
                    return Ok(search(&index));
                }
            }
            Ok(py.detach(|| search(&lock.read().unwrap_or_else(PoisonError::into_inner))))
        })?
        .map_err(to_py_err)?;
        let rows = raw
            .into_iter()
            .map(|(title, id, distance)| Ok((decode_title(py, &title)?, id, distance)));
        answer_list(py, &MATCH_CLASS, rows).map(Some)
    }

    /// `query_arrays(int, int)` on a 64-bit index in one step, and `query_arrays` of a uint64
    /// array of one hash, for a search the planner prices below [`QUICK_QUERY_NS`]: run with
    /// the interpreter held, its rows straight into the three arrays. `None` otherwise (other
    /// arguments, a wider index, a costlier search, which the batch path runs with the
    /// interpreter released).
    fn query_arrays_fast<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
        radius: &Bound<'py, PyAny>,
        max_rows: usize,
    ) -> PyResult<Option<RangeArrays<'py>>> {
        let plain = self
            .plain_query(hash, radius)
            .or_else(|| self.plain_query_of_one(hash, radius));
        let Some((lock, hash, radius)) = plain else {
            return Ok(None);
        };
        let found = guarded(|| {
            Ok(match lock.try_read() {
                Ok(index) if index.range_cost_ns(radius) < QUICK_QUERY_NS => {
                    Some(index.query_bounded(hash, radius, None, max_rows))
                }
                _ => None,
            })
        })?;
        let Some(found) = found.transpose().map_err(to_py_err)? else {
            return Ok(None);
        };
        let lims = [0, found.len() as i64];
        let ids: Vec<i64> = found.iter().map(|m| m.id as i64).collect();
        let distances: Vec<i32> = found.iter().map(|m| m.distance as i32).collect();
        Ok(Some((
            PyArray1::from_slice(py, &lims),
            to_array(py, ids),
            to_array(py, distances),
        )))
    }

    #[pyo3(signature = (hashes, radius, limit = None, max_rows = mvptree::DEFAULT_MAX_ROWS, threads = 1))]
    fn query_many<'py>(
        &self,
        py: Python<'py>,
        hashes: &Bound<'py, PyAny>,
        radius: u32,
        limit: Option<usize>,
        max_rows: usize,
        threads: usize,
    ) -> PyResult<Vec<Vec<MatchTuple<'py>>>> {
        let raw = each_width!(&self.inner, lock => {
            let hashes = codes_for(lock, hashes)?;
            let snapshot = read_quick(lock, py, CoreIndex::snapshot)?;
            guarded(|| {
                Ok(py.detach(|| {
                    let rows = snapshot.query_rows(&hashes, radius, limit, max_rows, threads)?;
                    Ok::<_, Error>(
                        (0..rows.queries())
                            .map(|i| {
                                rows.row(i)
                                    .map(|m| {
                                        let title = snapshot.title(m.id).unwrap_or_default();
                                        (title.into(), m.id, m.distance)
                                    })
                                    .collect::<Vec<RawMatch>>()
                            })
                            .collect::<Vec<_>>(),
                    )
                }))
            })?
        });
        raw.map_err(to_py_err)?
            .into_iter()
            .map(|one| matches_to_py(py, one))
            .collect()
    }

    /// `(lims, ids, distances)`: range answers in CSR layout (see `mvptree::RangeRows`).
    #[pyo3(signature = (hashes, radius, limit = None, max_rows = mvptree::DEFAULT_MAX_ROWS, threads = 1))]
    fn query_arrays<'py>(
        &self,
        py: Python<'py>,
        hashes: &Bound<'py, PyAny>,
        radius: u32,
        limit: Option<usize>,
        max_rows: usize,
        threads: usize,
    ) -> PyResult<RangeArrays<'py>> {
        let rows = each_width!(&self.inner, lock => {
            let hashes = codes_for(lock, hashes)?;
            let snapshot = read_quick(lock, py, CoreIndex::snapshot)?;
            guarded(|| {
                Ok(py.detach(|| snapshot.query_rows(&hashes, radius, limit, max_rows, threads)))
            })?
        })
        .map_err(to_py_err)?;
        // Converted in place (same sizes): a wide answer is not copied again. Ids and
        // distances fit (ids are at most i64::MAX, distances at most 256).
        let lims: Vec<i64> = rows.lims.into_iter().map(|l| l as i64).collect();
        let ids: Vec<i64> = rows.ids.into_iter().map(|id| id as i64).collect();
        let distances: Vec<i32> = rows.distances.into_iter().map(|d| d as i32).collect();
        Ok((
            to_array(py, lims),
            to_array(py, ids),
            to_array(py, distances),
        ))
    }

    /// `(ids, distances)`, each of shape `(len(hashes), k)`: see `mvptree::KnnRows`.
    #[pyo3(signature = (hashes, k, max_rows = mvptree::DEFAULT_MAX_ROWS, threads = 1))]
    fn knn_arrays<'py>(
        &self,
        py: Python<'py>,
        hashes: &Bound<'py, PyAny>,
        k: usize,
        max_rows: usize,
        threads: usize,
    ) -> PyResult<KnnArrays<'py>> {
        let (n, rows) = each_width!(&self.inner, lock => {
            let hashes = codes_for(lock, hashes)?;
            let snapshot = read_quick(lock, py, CoreIndex::snapshot)?;
            let rows =
                guarded(|| Ok(py.detach(|| snapshot.knn_rows(&hashes, k, max_rows, threads))))?;
            (hashes.len(), rows)
        });
        let rows = rows.map_err(to_py_err)?;
        let ids = PyArray1::from_vec(py, rows.ids).reshape([n, k])?;
        let distances = PyArray1::from_vec(py, rows.distances).reshape([n, k])?;
        Ok((ids, distances))
    }

    /// The title of each id (pending or indexed), None where there is none.
    fn titles<'py>(
        &self,
        py: Python<'py>,
        ids: PyReadonlyArray1<'py, u64>,
    ) -> PyResult<Vec<Option<Bound<'py, PyString>>>> {
        let ids = ids.as_slice()?.to_vec();
        let raw: Vec<Option<Box<[u8]>>> = each_width!(&self.inner, lock => {
            read_quick(lock, py, |index| {
                ids.iter()
                    .map(|&id| index.lookup(id).map(Box::from))
                    .collect()
            })?
        });
        raw.into_iter()
            .map(|title| title.map(|t| decode_title(py, &t)).transpose())
            .collect()
    }

    #[pyo3(signature = (hash, k, max_rows = mvptree::DEFAULT_MAX_ROWS))]
    fn knn<'py>(
        &self,
        py: Python<'py>,
        hash: &Bound<'py, PyAny>,
        k: usize,
        max_rows: usize,
    ) -> PyResult<Vec<MatchTuple<'py>>> {
        let raw = each_width!(&self.inner, lock => {
            let hash = code_for(lock, hash)?;
            read_detached(lock, py, |index| {
                index
                    .knn_bounded(hash, k, max_rows)
                    .map(|found| with_titles(index, found))
            })?
        });
        matches_to_py(py, raw.map_err(to_py_err)?)
    }

    fn lookup<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Option<Bound<'py, PyString>>> {
        let title = each_width!(&self.inner, lock => {
            read_quick(lock, py, |index| index.lookup(id).map(Box::<[u8]>::from))?
        });
        title.map(|title| decode_title(py, &title)).transpose()
    }

    fn contains(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        each_width!(&self.inner, lock => read_quick(lock, py, |index| index.contains(id)))
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        each_width!(&self.inner, lock => read_quick(lock, py, |index| index.len()))
    }

    fn delete(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        each_width!(&self.inner, lock => {
            write_detached(lock, py, |index| index.delete(id))?.map_err(to_py_err)
        })
    }

    /// `[(name, value)]` in the core's order; values are int or str.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Vec<(&'static str, Bound<'py, PyAny>)>> {
        let pairs = each_width!(&self.inner, lock => read_quick(lock, py, |index| index.stats().to_pairs())?);
        pairs
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    InfoValue::Int(n) => n.into_pyobject(py)?.into_any(),
                    InfoValue::Text(text) => PyString::new(py, &text).into_any(),
                };
                Ok((name, value))
            })
            .collect()
    }

    /// `[Pair(a, b, distance)]`, `a < b`, sorted by distance, then a, then b: built here, in
    /// one list, with the class `set_answer_classes` gave.
    #[pyo3(signature = (radius, max_rows = mvptree::DEFAULT_MAX_ROWS, threads = 1))]
    fn pairs<'py>(
        &self,
        py: Python<'py>,
        radius: u32,
        max_rows: usize,
        threads: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let found = each_width!(&self.inner, lock => {
            let snapshot = read_quick(lock, py, CoreIndex::snapshot)?;
            guarded(|| Ok(py.detach(|| snapshot.pairs_on_threads(radius, max_rows, threads))))?
        })
        .map_err(to_py_err)?;
        let rows = found
            .into_iter()
            .map(|Pair { a, b, distance }| Ok((a, b, distance)));
        answer_list(py, &PAIR_CLASS, rows)
    }

    /// `(a, b, distances)`: the pairs of `pairs` as three arrays, in the same order.
    #[pyo3(signature = (radius, max_rows = mvptree::DEFAULT_MAX_ROWS, threads = 1))]
    fn pairs_arrays<'py>(
        &self,
        py: Python<'py>,
        radius: u32,
        max_rows: usize,
        threads: usize,
    ) -> PyResult<RangeArrays<'py>> {
        let rows = each_width!(&self.inner, lock => {
            let snapshot = read_quick(lock, py, CoreIndex::snapshot)?;
            guarded(|| Ok(py.detach(|| snapshot.pairs_rows(radius, max_rows, threads))))?
        })
        .map_err(to_py_err)?;
        Ok((
            PyArray1::from_vec(py, rows.a),
            PyArray1::from_vec(py, rows.b),
            PyArray1::from_vec(py, rows.distances),
        ))
    }

    /// One page of the self-join: `(pairs, next_cursor)`, the cursor `None` at the end (see
    /// `mvptree::Index::pairs_page`). The search runs on a snapshot, without the lock.
    fn pairs_page(
        &self,
        py: Python<'_>,
        radius: u32,
        cursor: &str,
        count: usize,
    ) -> PyResult<PairsPage> {
        let cursor: PairsCursor = cursor.parse().map_err(to_py_err)?;
        each_width!(&self.inner, lock => {
            let snapshot = read_quick(lock, py, |index| index.snapshot())?;
            guarded(|| {
                Ok(py.detach(|| {
                    let (pairs, next) = snapshot.pairs_page(radius, cursor, count);
                    (
                        pairs
                            .into_iter()
                            .map(|Pair { a, b, distance }| (a, b, distance))
                            .collect(),
                        next.map(|c| c.to_string()),
                    )
                }))
            })
        })
    }

    /// A snapshot `[(id, hash, title, pending)]`: indexed entries by id, then pending ones;
    /// hashes as `query` takes them (an int, or bytes for wider codes).
    fn entries<'py>(&self, py: Python<'py>) -> PyResult<Vec<EntryTuple<'py>>> {
        each_width!(&self.inner, lock => {
            let raw = read_detached(lock, py, |index| {
                index
                    .entries()
                    .map(|e| (e.id, e.hash, Box::<[u8]>::from(e.title), e.pending))
                    .collect::<Vec<_>>()
            })?;
            raw.into_iter()
                .map(|(id, hash, title, pending)| {
                    Ok((id, hash.to_py(py)?, decode_title(py, &title)?, pending))
                })
                .collect()
        })
    }

    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        each_width!(&self.inner, lock => {
            read_detached(lock, py, |index| save_atomically(index, &path))?.map_err(to_py_err)
        })
    }

    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<PyIndex> {
        let index =
            guarded(|| Ok(py.detach(|| load_file(&path))))?.map_err(|error| match error {
                Error::Format(why) => {
                    to_py_err(Error::Format(format!("{}: {why}", path.display())))
                }
                other => to_py_err(other),
            })?;
        let inner = match index {
            AnyIndex::Bits64(index) => Inner::Bits64(RwLock::new(index)),
            AnyIndex::Bits128(index) => Inner::Bits128(RwLock::new(index)),
            AnyIndex::Bits256(index) => Inner::Bits256(RwLock::new(index)),
        };
        Ok(PyIndex { inner })
    }
}

fn code_bits<C: Code>(_lock: &RwLock<CoreIndex<C>>) -> u32 {
    C::BITS
}

/// Searches priced below this run with the interpreter held (see `Index.query_fast`).
const QUICK_QUERY_NS: f64 = 20_000.0;

/// Elements up to which [`to_array`] copies a vector into an array numpy allocates.
const COPIED_ARRAY_LEN: usize = 1024;

/// `values` as a 1-D numpy array. A short one is copied into memory numpy allocates: handing
/// the vector over instead makes a Python object to own it as the array's base, which costs
/// more than the copy (one hash's `query_arrays` at r0 on 1M codes: three arrays, about 0.08
/// µs of its 0.8 a call). A long one is handed over, not copied.
fn to_array<T: numpy::Element>(py: Python<'_>, values: Vec<T>) -> Bound<'_, PyArray1<T>> {
    if values.len() <= COPIED_ARRAY_LEN {
        PyArray1::from_slice(py, &values)
    } else {
        PyArray1::from_vec(py, values)
    }
}

/// The Python answer classes `Match` and `Pair`, which `query_fast` and `pairs` build their
/// answers with (set once by the Python layer: the classes are defined there).
static MATCH_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static PAIR_CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `set_answer_classes(Match, Pair)`: called once by `imgscout._types`.
#[pyfunction]
fn set_answer_classes(
    py: Python<'_>,
    match_class: Bound<'_, PyType>,
    pair_class: Bound<'_, PyType>,
) -> PyResult<()> {
    let _ = MATCH_CLASS.set(py, match_class.unbind());
    let _ = PAIR_CLASS.set(py, pair_class.unbind());
    Ok(())
}

fn answer_class<'py>(
    py: Python<'py>,
    class: &'static PyOnceLock<Py<PyType>>,
) -> PyResult<&'py Bound<'py, PyType>> {
    class
        .get(py)
        .map(|class| class.bind(py))
        .ok_or_else(|| PyRuntimeError::new_err("imgscout._core: answer classes not set"))
}

/// A list of `class` (a `NamedTuple`) instances, one per row, built as `tuple.__new__(class,
/// row)` does: the class's own `__new__` is Python code, a frame per row.
///
/// The cyclic garbage collector is paused meanwhile (and restored however this ends): every
/// new tuple counts towards its next run, and each run walks every tracked object, so a list
/// of millions of answers would trigger hundreds of full walks of a growing heap. Tuples of
/// ints and strings cannot form cycles.
fn answer_list<'py, T: IntoPyObject<'py>>(
    py: Python<'py>,
    class: &'static PyOnceLock<Py<PyType>>,
    rows: impl ExactSizeIterator<Item = PyResult<T>>,
) -> PyResult<Bound<'py, PyList>> {
    let class = answer_class(py, class)?;
    let new = py.get_type::<PyTuple>().getattr(intern!(py, "__new__"))?;
    let _paused = GcPause::new(py, rows.len())?;
    let list = PyList::empty(py);
    for row in rows {
        list.append(new.call1((class, row?))?)?;
    }
    Ok(list)
}

/// Pauses Python's cyclic garbage collector until dropped, when it was running and the list
/// about to be built is large enough for the collector to matter.
struct GcPause<'py> {
    gc: Option<Bound<'py, PyModule>>,
}

impl<'py> GcPause<'py> {
    /// Rows below which pausing costs more than it saves.
    const MIN_ROWS: usize = 10_000;

    fn new(py: Python<'py>, rows: usize) -> PyResult<GcPause<'py>> {
        if rows < Self::MIN_ROWS {
            return Ok(GcPause { gc: None });
        }
        let gc = py.import(intern!(py, "gc"))?;
        if !gc.call_method0(intern!(py, "isenabled"))?.is_truthy()? {
            return Ok(GcPause { gc: None });
        }
        gc.call_method0(intern!(py, "disable"))?;
        Ok(GcPause { gc: Some(gc) })
    }
}

impl Drop for GcPause<'_> {
    fn drop(&mut self) {
        if let Some(gc) = &self.gc {
            // Re-enabling cannot fail short of interpreter teardown; nothing to report then.
            let _ = gc.call_method0(intern!(gc.py(), "enable"));
        }
    }
}

/// `parse_hash_text(text)`: the hash a text names under the core's grammar
/// (`mvptree::text::parse_hash`, stated in docs/spec.md), or None when it names none.
#[pyfunction]
fn parse_hash_text(text: &str) -> Option<u64> {
    mvptree::text::parse_hash(text.as_bytes()).ok()
}

/// `parse_radius_text(text, bits=64)`: the radius a text names (0..=bits: more acts as
/// `bits`), or None.
#[pyfunction]
#[pyo3(signature = (text, bits = 64))]
fn parse_radius_text(text: &str, bits: u32) -> Option<u32> {
    mvptree::text::parse_radius_up_to(text.as_bytes(), bits).ok()
}

/// `parse_id_text(text)`: the id a text names, or None.
#[pyfunction]
fn parse_id_text(text: &str) -> Option<u64> {
    mvptree::text::parse_id(text.as_bytes()).ok()
}

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyIndex>()?;
    for (name, class) in errors::classes(module.py())?.named() {
        module.add(name, class.bind(module.py()))?;
    }
    module.add_function(wrap_pyfunction!(errors::error, module)?)?;
    module.add_function(wrap_pyfunction!(errors::error_for_message, module)?)?;
    module.add_function(wrap_pyfunction!(errors::error_codes, module)?)?;
    module.add_function(wrap_pyfunction!(parse_hash_text, module)?)?;
    module.add_function(wrap_pyfunction!(set_answer_classes, module)?)?;
    module.add_function(wrap_pyfunction!(parse_radius_text, module)?)?;
    module.add_function(wrap_pyfunction!(parse_id_text, module)?)?;
    module.add("MAX_HASH", u64::MAX)?;
    module.add("ALL_CORES", mvptree::all_cores())?;
    module.add("NO_ID", mvptree::KnnRows::NO_ID)?;
    module.add("NO_DISTANCE", mvptree::KnnRows::NO_DISTANCE)?;
    module.add("DEFAULT_MAX_ROWS", mvptree::DEFAULT_MAX_ROWS)?;
    module.add("DEFAULT_PAGE_ROWS", mvptree::DEFAULT_PAGE_ROWS)?;
    module.add("MAX_ID", mvptree::MAX_ID)?;
    module.add("MAX_RADIUS", mvptree::MAX_RADIUS)?;
    module.add("MAX_CODE_BITS", mvptree::MAX_CODE_BITS)?;
    module.add("DEFAULT_SYNC_THRESHOLD", mvptree::DEFAULT_SYNC_THRESHOLD)?;
    module.add("MAX_SYNC_THRESHOLD", mvptree::MAX_SYNC_THRESHOLD)?;
    Ok(())
}
