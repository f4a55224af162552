//! The use cases: each takes its ports as parameters, so it is tested with in-memory adapters.

pub mod apply_reply;
pub mod callbacks;
pub mod deadline_timer;
pub mod deliver_outcome;
pub mod follow_order;
pub mod place_order;
pub mod update_replica;
