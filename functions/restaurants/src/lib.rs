//! The restaurants context.
