//! coordinator (in progress)
pub mod consistency;
