//! The integration tests of gradlab-curvature, one binary (each test binary is a compile and a link of
//! burn's generics: one per crate keeps the clean build short).

mod model;
mod spectrum;
