//! The commands, one file each: its arguments (`Args`, with clap `ValueEnum`s for every closed
//! set of names) and its `run`.

pub mod enhance;
pub mod hessian;
pub mod list;
pub mod optimize;
pub mod reproduce;
pub mod results;
pub mod run;
pub mod saliency;
pub mod sample;
pub mod solve;
pub mod train;
