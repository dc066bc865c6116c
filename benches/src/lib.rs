//! Shared helpers for the capsa benches.
