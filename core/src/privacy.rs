//! Privacy guard (being written).
