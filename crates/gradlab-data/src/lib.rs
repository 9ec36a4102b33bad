//! # gradlab-data
//!
//! Data for the gradlab experiments: 2D distributions with exact densities ([`toy2d`]), optimizer
//! test problems ([`functions`]), labelled images and their formats ([`images`]), procedural and
//! synthetic sets ([`procedural`]), synthetic adverse-weather videos ([`weather`]) and seeded minibatching into burn tensors ([`batch`]).
//! Every sampler takes a seed; the same seed gives the same data.

pub mod batch;
pub mod error;
pub mod functions;
pub mod images;
pub mod procedural;
pub mod toy2d;
pub mod weather;

pub use error::{DataError, Result};
pub use images::ImageSet;
