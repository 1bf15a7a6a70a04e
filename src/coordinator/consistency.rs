//! consistency (in progress)
