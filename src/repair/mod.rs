//! repair (in progress)
