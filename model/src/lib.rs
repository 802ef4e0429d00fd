//! The reference model (work in progress).
