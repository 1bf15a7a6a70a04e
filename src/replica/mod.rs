//! replica (in progress)
