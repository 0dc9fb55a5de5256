//! The step loop (being written).
