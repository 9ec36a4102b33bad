//! The integration tests of gradlab-generative, one binary (each test binary is a compile and a link of
//! burn's generics: one per crate keeps the clean build short).

mod gradients;
mod rectified_flow;
mod samplers;
mod training;
