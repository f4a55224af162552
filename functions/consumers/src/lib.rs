//! The consumers context.
