//! membership (in progress)
