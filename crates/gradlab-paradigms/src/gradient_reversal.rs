//! The gradient reversal layer (Ganin and Lempitsky, "Unsupervised Domain Adaptation by
//! Backpropagation", ICML 2015), as ViWS-Net's `ReverseLayerF`: the identity forward, −α times
//! the upstream gradient backward, so that one optimiser step trains a discriminator to tell the
//! domains apart and the features before it to hide them. α follows the DANN progress schedule
//! α(p) = 2 / (1 + e^{−10p}) − 1, p ∈ [0, 1] the fraction of training done.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::gradient_reversal::{progress_alpha, reverse_gradient};
//! let dev = Device::flex().autodiff();
//! let x = Tensor::<1>::from_floats([1.0, 2.0], &dev).require_grad();
//! let y = reverse_gradient(x.clone(), 0.5).unwrap();
//! let g = x.grad(&(y * 3.0).sum().backward()).unwrap();
//! assert_eq!(g.into_data().to_vec::<f32>().unwrap(), vec![-1.5, -1.5]);
//! assert_eq!(progress_alpha(0.0).unwrap(), 0.0);
//! ```

use crate::error::invalid;
use burn::prelude::*;

/// `x` unchanged in the forward pass; its gradient multiplied by −α in the backward pass.
pub fn reverse_gradient<const D: usize>(x: Tensor<D>, alpha: f64) -> crate::Result<Tensor<D>> {
    if !alpha.is_finite() {
        return invalid(format!("the reversal weight α must be finite, got {alpha}"));
    }
    let frozen = x.clone().detach();
    // x − frozen is exactly 0, so the forward value is frozen's bit for bit.
    Ok(frozen.clone() + (x - frozen) * (-alpha))
}

/// The DANN schedule α(p) = 2 / (1 + e^{−10p}) − 1 at training progress p ∈ [0, 1].
pub fn progress_alpha(progress: f64) -> crate::Result<f64> {
    if !(0.0..=1.0).contains(&progress) {
        return invalid(format!(
            "training progress must be in [0, 1], got {progress}"
        ));
    }
    Ok(2.0 / (1.0 + (-10.0 * progress).exp()) - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;
    use gradlab_core::bridge::{from_host, to_host};

    /// Forward is the identity exactly; backward is −α times any upstream gradient (f64).
    #[test]
    fn backward_is_minus_alpha_times_the_upstream_gradient() {
        let dev = Device::flex().autodiff();
        let v = [0.3, -1.7, 2.5, 1e-3];
        let up = [1.0, -2.0, 0.25, 7.0];
        for alpha in [0.0, 0.37, 1.0, -0.5] {
            let x = from_host(&v, [4], &dev).unwrap().require_grad();
            let y = reverse_gradient(x.clone(), alpha).unwrap();
            assert_eq!(to_host(y.clone()).unwrap(), v.to_vec());
            let w = from_host(&up, [4], &dev).unwrap();
            let g = to_host(x.grad(&(y * w).sum().backward()).unwrap()).unwrap();
            let want: Vec<f64> = up.iter().map(|u| -alpha * u).collect();
            assert_eq!(g.len(), 4);
            for (a, b) in g.iter().zip(&want) {
                assert!((a - b).abs() < 1e-15, "α = {alpha}: {g:?} against {want:?}");
            }
            assert_eq!(x.dtype(), DType::F64);
        }
    }

    #[test]
    fn the_schedule_rises_from_0_towards_1_and_refuses_bad_progress() {
        assert_eq!(progress_alpha(0.0).unwrap(), 0.0);
        let mid = progress_alpha(0.5).unwrap();
        assert!((mid - (2.0 / (1.0 + (-5.0f64).exp()) - 1.0)).abs() < 1e-15);
        assert!(progress_alpha(1.0).unwrap() > 0.9999);
        assert!(progress_alpha(1.5).unwrap_err().to_string().contains("1.5"));
        assert!(progress_alpha(f64::NAN).is_err());
        let x = Tensor::<1>::zeros([2], &Device::flex());
        assert!(
            reverse_gradient(x, f64::INFINITY)
                .unwrap_err()
                .to_string()
                .contains("inf")
        );
    }
}
