//! Flat views of a module's float parameters, in visiting order.
//!
//! Used by joint optimizers, curvature tools and tests that compare parameters exactly.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

struct Collect(Vec<f32>);
impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.extend(
            p.val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default(),
        );
    }
}

/// All float parameters of `module`, flattened and concatenated in visiting order.
pub fn flatten<M: Module>(module: &M) -> Vec<f32> {
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

struct Load<'a> {
    flat: &'a [f32],
    offset: usize,
}
impl ModuleMapper for Load<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.map(|t| {
            let n = t.shape().num_elements();
            let end = (self.offset + n).min(self.flat.len());
            let data = TensorData::new(self.flat[self.offset..end].to_vec(), t.shape());
            self.offset = end;
            let tracked = t.is_require_grad();
            let new = Tensor::<D>::from_data(data, &t.device());
            if tracked { new.require_grad() } else { new }
        })
    }
}

/// Error returned by [`load`] when the vector length does not match the module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthMismatch {
    /// Parameters in the module.
    pub expected: usize,
    /// Values given.
    pub got: usize,
}

impl std::fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the module has {} parameters, the vector {}",
            self.expected, self.got
        )
    }
}
impl std::error::Error for LengthMismatch {}

/// Replace the float parameters of `module` with `flat` (same order as [`flatten`]).
pub fn load<M: Module>(module: M, flat: &[f32]) -> Result<M, LengthMismatch> {
    let expected = module.num_params();
    if expected != flat.len() {
        return Err(LengthMismatch {
            expected,
            got: flat.len(),
        });
    }
    Ok(module.map(&mut Load { flat, offset: 0 }))
}
