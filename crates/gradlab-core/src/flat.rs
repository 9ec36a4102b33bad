//! A module's float parameters, or their gradients, as one flat vector in visiting order — the
//! visitor/mapper pair of burn's L-BFGS, on the device, with errors where L-BFGS skips: a missing
//! gradient, a vector of the wrong length, a module without parameters.
//!
//! ```
//! use burn::prelude::*;
//! use burn::nn::LinearConfig;
//! use gradlab_core::flat;
//! let dev = Device::flex();
//! let layer = LinearConfig::new(2, 1).init(&dev);             // weight [2, 1], bias [1]
//! let theta = flat::flatten_host(&layer).unwrap();
//! assert_eq!(theta.len(), 3);
//! let zeroed = flat::load_host(layer, &[0.0; 3]).unwrap();
//! assert_eq!(flat::flatten_host(&zeroed).unwrap(), vec![0.0; 3]);
//! assert!(flat::load_host(zeroed, &[0.0; 2]).is_err());      // 2 values for 3 parameters
//! ```

use crate::{CoreError, Result, bridge};
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct Collect {
    parts: Vec<Tensor<1>>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let t = p.val().detach();
        let n = t.shape().num_elements();
        self.parts.push(t.reshape([n]));
    }
}

fn concat(parts: Vec<Tensor<1>>) -> Result<Tensor<1>> {
    if parts.is_empty() {
        return Err(CoreError::Length {
            what: "a module's float parameters",
            expected: 1,
            got: 0,
        });
    }
    Ok(Tensor::cat(parts, 0))
}

/// All float parameters of `module`, detached, flattened and concatenated in visiting order on
/// their device (in their dtype).
pub fn flatten<M: Module>(module: &M) -> Result<Tensor<1>> {
    let mut c = Collect { parts: vec![] };
    module.visit(&mut c);
    concat(c.parts)
}

/// [`flatten`], read back to the host as f64 (exact for f32 and f64 parameters).
pub fn flatten_host<M: Module>(module: &M) -> Result<Vec<f64>> {
    bridge::to_host(flatten(module)?)
}

struct CollectGrads<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    parts: Vec<Tensor<1>>,
    missing: Option<String>,
}

impl ModuleVisitor for CollectGrads<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        match self.grads.get::<D>(p.id) {
            Some(g) => {
                let n = g.shape().num_elements();
                self.parts.push(g.reshape([n]));
            }
            None if self.missing.is_none() => {
                let path = self.path.join(".");
                self.missing = Some(if path.is_empty() {
                    format!("{}", p.id)
                } else {
                    path
                });
            }
            None => {}
        }
    }
}

/// The gradients of all float parameters of `module`, flattened in the order of [`flatten`]; a
/// parameter without a gradient is an error naming it (never a silent gap or zero).
pub fn flat_grads<M: Module>(module: &M, grads: &GradientsParams) -> Result<Tensor<1>> {
    let mut c = CollectGrads {
        grads,
        path: vec![],
        parts: vec![],
        missing: None,
    };
    module.visit(&mut c);
    if let Some(name) = c.missing {
        return Err(CoreError::MissingGradient(name));
    }
    concat(c.parts)
}

/// [`flat_grads`], read back to the host as f64.
pub fn flat_grads_host<M: Module>(module: &M, grads: &GradientsParams) -> Result<Vec<f64>> {
    bridge::to_host(flat_grads(module, grads)?)
}

struct Load<'a> {
    flat: &'a Tensor<1>,
    offset: usize,
}

impl ModuleMapper for Load<'_> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        p.map(|t| {
            let n = t.shape().num_elements();
            let start = self.offset;
            self.offset += n;
            let tracked = t.is_require_grad();
            let new = self
                .flat
                .clone()
                .slice(start..start + n)
                .reshape(t.shape())
                .cast(t.dtype());
            if tracked { new.require_grad() } else { new }
        })
    }
}

/// `module` with its float parameters replaced by `flat` (the order of [`flatten`]); each keeps
/// its dtype, device placement and whether it requires a gradient.
pub fn load<M: Module>(module: M, flat: Tensor<1>) -> Result<M> {
    let expected = module.num_params();
    let got = flat.dims()[0];
    if expected != got {
        return Err(CoreError::Length {
            what: "a module's parameters",
            expected,
            got,
        });
    }
    Ok(module.map(&mut Load {
        flat: &flat,
        offset: 0,
    }))
}

/// [`load`] from host values (f64, cast to each parameter's dtype), on the module's device.
pub fn load_host<M: Module>(module: M, flat: &[f64]) -> Result<M> {
    let expected = module.num_params();
    let device = match module.devices().first() {
        Some(d) => d.clone(),
        None => {
            return Err(CoreError::Length {
                what: "a module's parameters",
                expected,
                got: flat.len(),
            });
        }
    };
    load(module, bridge::from_host(flat, [flat.len()], &device)?)
}

struct Register<'a> {
    flat: &'a [f64],
    offset: usize,
    out: GradientsParams,
    failed: Option<CoreError>,
}

impl ModuleVisitor for Register<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if self.failed.is_some() {
            return;
        }
        let t = p.val();
        let n = t.shape().num_elements();
        let part = &self.flat[self.offset..self.offset + n];
        self.offset += n;
        let dims: [usize; D] = t.dims();
        match bridge::from_host(part, dims, &t.device().inner()) {
            Ok(g) => self.out.register::<D>(p.id, g.cast(t.dtype())),
            Err(e) => self.failed = Some(e),
        }
    }
}

/// Per-parameter gradients of `module` from one flat host vector in the order of
/// [`flat_grads`] (each in its parameter's dtype, on its device without autodiff, as
/// [`GradientsParams::from_grads`] holds them): the inverse of
/// [`flat_grads_host`], for gradients summed elsewhere (an all-reduce, a decoder).
pub fn grads_from_host<M: Module>(module: &M, flat: &[f64]) -> Result<GradientsParams> {
    let expected = module.num_params();
    if flat.len() != expected {
        return Err(CoreError::Length {
            what: "a module's gradients",
            expected,
            got: flat.len(),
        });
    }
    let mut r = Register {
        flat,
        offset: 0,
        out: GradientsParams::new(),
        failed: None,
    };
    module.visit(&mut r);
    match r.failed {
        Some(e) => Err(e),
        None => Ok(r.out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};

    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }

    fn two(dev: &Device) -> Two {
        Two {
            a: LinearConfig::new(3, 2).init(dev),
            b: LinearConfig::new(2, 1).init(dev),
        }
    }

    #[test]
    fn flatten_load_and_gradients_follow_the_visiting_order() {
        let dev = Device::flex().autodiff();
        let m = two(&dev);
        let theta = flatten_host(&m).unwrap();
        assert_eq!(theta.len(), m.num_params());
        // The first 6 values are a's weight, row-major, as the parameter itself reads.
        let wa = bridge::to_host(m.a.weight.val()).unwrap();
        assert_eq!(&theta[..6], wa.as_slice());
        let shifted: Vec<f64> = theta.iter().map(|v| v + 1.0).collect();
        let m = load_host(m, &shifted).unwrap();
        let back = flatten_host(&m).unwrap();
        for (a, b) in back.iter().zip(&shifted) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}"); // f32 parameters
        }
        // d/dθ of Σθ² through the module is 2θ, in the same order; loaded parameters still
        // require gradients.
        let x = Tensor::<2>::ones([1, 3], &dev);
        let loss = m.b.forward(m.a.forward(x)).sum() * 0.0
            + Tensor::cat(
                vec![
                    m.a.weight.val().reshape([6]),
                    m.a.bias.as_ref().unwrap().val(),
                    m.b.weight.val().reshape([2]),
                    m.b.bias.as_ref().unwrap().val(),
                ],
                0,
            )
            .square()
            .sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let g = flat_grads_host(&m, &grads).unwrap();
        for (gi, ti) in g.iter().zip(&back) {
            assert!((gi - 2.0 * ti).abs() < 1e-5, "{gi} vs {}", 2.0 * ti);
        }
    }

    #[test]
    fn a_missing_gradient_and_a_wrong_length_are_errors() {
        let dev = Device::flex().autodiff();
        let m = two(&dev);
        // Only a is on the loss's path: b's gradient is missing, and named.
        let loss = m.a.forward(Tensor::<2>::ones([1, 3], &dev)).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        match flat_grads(&m, &grads) {
            Err(CoreError::MissingGradient(name)) => assert!(name.starts_with('b'), "{name}"),
            other => panic!("expected a missing gradient, got {other:?}"),
        }
        let n = m.num_params();
        assert!(matches!(
            load_host(m, &vec![0.0; n + 1]),
            Err(CoreError::Length { got, .. }) if got == n + 1
        ));
    }

    #[test]
    fn gradients_rebuilt_from_a_flat_vector_are_the_original_ones() {
        let dev = Device::flex().autodiff();
        let m = two(&dev);
        let x = Tensor::<2>::from_floats([[0.5, -1.0, 2.0]], &dev);
        let loss = m.b.forward(m.a.forward(x)).powf_scalar(2.0).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        let g = flat_grads_host(&m, &grads).unwrap();
        let doubled: Vec<f64> = g.iter().map(|v| 2.0 * v).collect();
        let rebuilt = grads_from_host(&m, &doubled).unwrap();
        // Per parameter, in place: a's weight gradient is the first 6 values, b's bias the last.
        let wa = bridge::to_host(rebuilt.get::<2>(m.a.weight.id).unwrap()).unwrap();
        assert_eq!(wa.as_slice(), &doubled[..6]);
        let bb = bridge::to_host(rebuilt.get::<1>(m.b.bias.as_ref().unwrap().id).unwrap()).unwrap();
        assert_eq!(bb.as_slice(), &doubled[doubled.len() - 1..]);
        assert_eq!(flat_grads_host(&m, &rebuilt).unwrap(), doubled);
        assert!(matches!(
            grads_from_host(&m, &doubled[1..]),
            Err(CoreError::Length { .. })
        ));
    }
}
