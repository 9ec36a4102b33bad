//! One module per paper: the experiment that checks its claim.

pub mod diffgrad;
