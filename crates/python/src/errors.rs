//! The core's error vocabulary as Python exceptions: one class per kind of failure, chosen by
//! the core's [`ErrorCode`], never by matching message text. Every instance carries the code
//! as `.code`. The classes also derive from the built-in exception Python code expects for
//! the case (`ValueError` for bad input, `KeyError` for a missing id), so `except ValueError`
//! keeps working.
//!
//! | class | built-in base | codes |
//! |---|---|---|
//! | `InvalidArgumentError` | `ValueError` | every `invalid-*` argument code, `syntax` |
//! | `IdExistsError` | `ValueError` | `id-exists` |
//! | `IdsExhaustedError` | `ValueError` | `ids-exhausted` |
//! | `NoSuchIdError` | `KeyError` | `no-such-id` (its argument is the id, as `KeyError`'s is) |
//! | `AnswerTooLargeError` | `ValueError` | `too-many-rows` |
//! | `InvalidDataError` | `ValueError` | `invalid-data` |
//!
//! All derive from `ImgscoutError`. The `io` code is raised as `OSError`.

use mvptree::{Error, ErrorCode};
use pyo3::exceptions::{PyException, PyKeyError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

/// The classes, made once per interpreter at module initialization.
pub struct Classes {
    pub base: Py<PyType>,
    invalid_argument: Py<PyType>,
    id_exists: Py<PyType>,
    ids_exhausted: Py<PyType>,
    no_such_id: Py<PyType>,
    too_large: Py<PyType>,
    invalid_data: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn make_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: &[Bound<'py, PyType>],
    doc: &str,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "imgscout")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(class.unbind())
}

fn build(py: Python<'_>) -> PyResult<Classes> {
    let base = make_class(
        py,
        "ImgscoutError",
        &[py.get_type::<PyException>()],
        "Base of every error imgscout raises for a reason it names; `.code` is the stable \
         error code (docs/spec.md lists them).",
    )?;
    let value_error = py.get_type::<PyValueError>();
    let with = |name: &str, builtin: &Bound<'_, PyType>, doc: &str| {
        make_class(py, name, &[base.bind(py).clone(), builtin.clone()], doc)
    };
    Ok(Classes {
        invalid_argument: with(
            "InvalidArgumentError",
            &value_error,
            "An argument that does not parse or is out of range (a hash, radius, id, k, limit, \
             count, threshold, cursor or title).",
        )?,
        id_exists: with(
            "IdExistsError",
            &value_error,
            "An explicit id that an entry already has.",
        )?,
        ids_exhausted: with(
            "IdsExhaustedError",
            &value_error,
            "The automatic ids are used up; only explicit ids can still be added.",
        )?,
        no_such_id: with(
            "NoSuchIdError",
            &py.get_type::<PyKeyError>(),
            "No entry has this id; the exception's argument is the id.",
        )?,
        too_large: with(
            "AnswerTooLargeError",
            &value_error,
            "An answer would hold more rows than allowed (`max_rows`, or the server's \
             `imgscout.max-reply-rows`): ask for fewer with a limit, or page through it.",
        )?,
        invalid_data: with(
            "InvalidDataError",
            &value_error,
            "A saved index (file or server payload) that is truncated, corrupted or not an \
             index.",
        )?,
        base,
    })
}

pub fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || build(py))
}

impl Classes {
    fn class_of(&self, code: ErrorCode) -> &Py<PyType> {
        match code {
            ErrorCode::IdExists => &self.id_exists,
            ErrorCode::IdsExhausted => &self.ids_exhausted,
            ErrorCode::NoSuchId => &self.no_such_id,
            ErrorCode::TooManyRows => &self.too_large,
            ErrorCode::InvalidData | ErrorCode::Io => &self.invalid_data,
            _ => &self.invalid_argument,
        }
    }

    /// Every class by its Python name, for the module to export.
    pub fn named(&self) -> [(&'static str, &Py<PyType>); 7] {
        [
            ("ImgscoutError", &self.base),
            ("InvalidArgumentError", &self.invalid_argument),
            ("IdExistsError", &self.id_exists),
            ("IdsExhaustedError", &self.ids_exhausted),
            ("NoSuchIdError", &self.no_such_id),
            ("AnswerTooLargeError", &self.too_large),
            ("InvalidDataError", &self.invalid_data),
        ]
    }
}

/// The exception for `code` with `argument` (the message; for `no-such-id`, the id), its
/// `.code` set.
pub fn exception<'py>(
    py: Python<'py>,
    code: ErrorCode,
    argument: Bound<'py, PyAny>,
) -> PyResult<PyErr> {
    let class = classes(py)?.class_of(code).bind(py);
    let instance = class.call1((argument,))?;
    instance.setattr("code", code.name())?;
    Ok(PyErr::from_value(instance))
}

fn code_named(name: &str) -> PyResult<ErrorCode> {
    ErrorCode::ALL
        .into_iter()
        .find(|code| code.name() == name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown error code: {name:?}")))
}

/// A core error as the Python exception for its code.
pub fn to_py_err(error: Error) -> PyErr {
    Python::attach(|py| {
        let built = match error {
            Error::Io(io) => return PyErr::from(io),
            Error::NoSuchId(id) => id
                .into_pyobject(py)
                .map_err(PyErr::from)
                .and_then(|id| exception(py, ErrorCode::NoSuchId, id.into_any())),
            other => {
                let message = other.to_string().into_pyobject(py).map(Bound::into_any);
                message
                    .map_err(PyErr::from)
                    .and_then(|message| exception(py, other.code(), message))
            }
        };
        built.unwrap_or_else(|e| e)
    })
}

/// `error(code, detail=None)`: the exception for an error code, its message the code's
/// fixed stem followed by `": detail"` when given; for `"no-such-id"`, `detail` is the id
/// and becomes the exception's argument; for `"too-many-rows"` the row cap and for
/// `"id-exists"` the id give the core's own wording. For checks a face makes before calling the core
/// (Python objects of the wrong type, say), so that they raise what the core would.
#[pyfunction]
#[pyo3(signature = (code, detail = None))]
pub fn error<'py>(
    py: Python<'py>,
    code: &str,
    detail: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let code = code_named(code)?;
    let argument = match (code, detail) {
        (ErrorCode::NoSuchId, Some(id)) => id,
        (ErrorCode::TooManyRows, Some(rows)) => core_text(py, Error::TooManyRows(rows.extract()?))?,
        (ErrorCode::IdExists, Some(id)) if id.extract::<u64>().is_ok() => {
            core_text(py, Error::DuplicateId(id.extract()?))?
        }
        (ErrorCode::IdsExhausted, None) => core_text(py, Error::IdsExhausted)?,
        (_, Some(detail)) => format!("{}: {}", code.stem(), detail.str()?)
            .into_pyobject(py)?
            .into_any(),
        (_, None) => code.stem().into_pyobject(py)?.into_any(),
    };
    Ok(exception(py, code, argument)?
        .into_value(py)
        .into_bound(py)
        .into_any())
}

fn core_text<'py>(py: Python<'py>, error: Error) -> PyResult<Bound<'py, PyAny>> {
    Ok(error.to_string().into_pyobject(py)?.into_any())
}

/// `error_for_message(message, entry_id=None)`: the exception for an error message another
/// face produced (a server's reply without its `ERR ` prefix), or None when the message has
/// no imgscout error code. `entry_id` is the argument of a `no-such-id` error.
#[pyfunction]
#[pyo3(signature = (message, entry_id = None))]
pub fn error_for_message<'py>(
    py: Python<'py>,
    message: &str,
    entry_id: Option<u64>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let Some(code) = ErrorCode::of_message(message) else {
        return Ok(None);
    };
    let argument = match (code, entry_id) {
        (ErrorCode::NoSuchId, Some(id)) => id.into_pyobject(py)?.into_any(),
        _ => message.into_pyobject(py)?.into_any(),
    };
    Ok(Some(
        exception(py, code, argument)?
            .into_value(py)
            .into_bound(py)
            .into_any(),
    ))
}

/// `error_codes()`: every code with its message stem, in the spec's order.
#[pyfunction]
pub fn error_codes() -> Vec<(&'static str, &'static str)> {
    ErrorCode::ALL
        .into_iter()
        .map(|code| (code.name(), code.stem()))
        .collect()
}
