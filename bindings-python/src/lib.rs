//! The Python binding of capsa: the extension module `capsa._native`, wrapped by the pure
//! Python package `capsa` (`bindings-python/python/capsa/`).
//!
//! Thin by design: every type converts and calls core, mapping errors by their stable code
//! (see [`errors`]). Every call that touches the disk releases the GIL.

use pyo3::prelude::*;

pub mod archive;
pub mod errors;
pub mod ids;
pub mod long;
pub mod seq;
pub mod staging;
pub mod store;
pub mod wait;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<store::PyStore>()?;
    m.add_class::<store::PyCapsule>()?;
    m.add_class::<store::PyCrate>()?;
    m.add_class::<store::PyFsckReport>()?;
    m.add_class::<store::PyFsckProblem>()?;
    m.add_class::<seq::PySequence>()?;
    m.add_class::<seq::PyFrameSet>()?;
    m.add_class::<seq::PyFrameIter>()?;
    m.add_class::<ids::PyCapsuleId>()?;
    m.add_class::<ids::PyVersion>()?;
    staging::register(m)?;
    m.add_class::<long::PyProgress>()?;
    m.add_class::<archive::PyArchiveReport>()?;
    m.add_class::<archive::PyVerifyReport>()?;
    m.add_class::<archive::PyOfflineStub>()?;
    m.add_function(wrap_pyfunction!(archive::archive, m)?)?;
    m.add_function(wrap_pyfunction!(archive::verify, m)?)?;
    m.add_function(wrap_pyfunction!(seq::find_sequences, m)?)?;
    m.add_function(wrap_pyfunction!(seq::sequences_in, m)?)?;
    Ok(())
}
