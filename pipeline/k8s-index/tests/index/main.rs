//! The index's tests, in one binary to keep builds cheap.

mod model_check;
mod rules;
