//! hints (in progress)
