//! Directory (being written).
