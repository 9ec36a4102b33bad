//! The exact score of a 2D Gaussian mixture under a process: each component N(m, C) becomes
//! N(α_t m, α_t² C + σ_t² I). Computed in f64 on the host per point ([`Gmm2::score`]) and returned
//! on the batch's device: exact, but not differentiable in x.

use super::ScoreModel;
use crate::process::Process;
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use gradlab_data::toy2d::Gmm2;

/// A 2D Gaussian mixture as data, noised by a process.
#[derive(Debug, Clone, PartialEq)]
pub struct GmmOracle<P> {
    process: P,
    data: Gmm2,
}

impl<P: Process> GmmOracle<P> {
    /// The mixture `data` under `process`.
    pub fn new(process: P, data: Gmm2) -> Result<Self> {
        Ok(Self { process, data })
    }

    /// The data distribution.
    pub fn data(&self) -> &Gmm2 {
        &self.data
    }

    /// The noised mixture p_t.
    pub fn at(&self, t: f64) -> Result<Gmm2> {
        let (a, s) = self.process.marginal(t)?;
        let means = self
            .data
            .means()
            .iter()
            .map(|m| [a * m[0], a * m[1]])
            .collect();
        let covs = self
            .data
            .covs()
            .iter()
            .map(|c| {
                [
                    [a * a * c[0][0] + s * s, a * a * c[0][1]],
                    [a * a * c[1][0], a * a * c[1][1] + s * s],
                ]
            })
            .collect();
        Gmm2::new(self.data.weights().to_vec(), means, covs)
            .map_err(|e| GenError::Invalid(e.to_string()))
    }
}

impl<P: Process> GmmOracle<P> {
    /// The exact x̂₀ = E[x₀ | x_t] = (x_t + σ_t² ∇log p_t(x_t))/α_t of each row of `x` at its own
    /// time `t[i]` (a batch noised at many times, as distillation draws it), on `x`'s device.
    pub fn denoised_rows(&self, x: Tensor<2>, t: &[f64]) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        if d != 2 || t.len() != n {
            return invalid(format!(
                "{n} points of dimension {d} with {} times for a 2D mixture",
                t.len()
            ));
        }
        let (dev, dtype) = (x.device(), x.dtype());
        let host = gradlab_core::bridge::to_host(x)?;
        let mut out = Vec::with_capacity(2 * n);
        for (r, &ti) in host.chunks_exact(2).zip(t) {
            let (a, s) = self.process.marginal(ti)?;
            let g = self.at(ti)?.score([r[0], r[1]]);
            out.extend([(r[0] + s * s * g[0]) / a, (r[1] + s * s * g[1]) / a]);
        }
        Ok(gradlab_core::bridge::from_host(&out, [n, 2], &dev)?.cast(dtype))
    }
}

impl<P: Process> ScoreModel<2> for GmmOracle<P> {
    fn score(&self, x: Tensor<2>, t: f64) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        if d != 2 {
            return invalid(format!("points of dimension {d} for a 2D mixture"));
        }
        let p = self.at(t)?;
        let (dev, dtype) = (x.device(), x.dtype());
        let host = gradlab_core::bridge::to_host(x)?;
        let data: Vec<f64> = host
            .chunks_exact(2)
            .flat_map(|r| p.score([r[0], r[1]]))
            .collect();
        Ok(gradlab_core::bridge::from_host(&data, [n, 2], &dev)?.cast(dtype))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Process, Sde};
    use gradlab_core::bridge::{from_host, to_host};

    #[test]
    fn each_component_is_noised_and_the_score_is_exact() {
        let g = Gmm2::isotropic(vec![[2.0, 0.0], [-2.0, 0.0]], 0.5).unwrap();
        let o = GmmOracle::new(Sde::vp(), g).unwrap();
        // At t = 1 the VP mixture is close to the prior N(0, I) (α(1) ≈ 0.0066).
        let p1 = o.at(1.0).unwrap();
        assert!(
            (p1.log_density([0.3, -0.2]) - Sde::vp().prior_log_density(&[0.3, -0.2])).abs() < 1e-2
        );
        let x = from_host(&[0.0, 1.0], [1, 2], &Device::flex()).unwrap();
        let s = to_host(o.score(x, 0.0).unwrap()).unwrap();
        // Symmetric mixture: no pull along x at x = 0; pull toward 0 along y with variance 0.25.
        assert!(s[0].abs() < 1e-12 && (s[1] + 4.0).abs() < 1e-9);
        assert!(
            o.score(Tensor::<2>::zeros([1, 3], &Device::flex()), 0.5)
                .is_err()
        );
    }

    #[test]
    fn rows_are_denoised_at_their_own_times() {
        // One component N(m, v I): E[x₀ | x_t] = m + α v (x − α m)/(α² v + σ²) (Gaussian
        // conditioning), each row at its own time.
        let (m, v): ([f64; 2], f64) = ([1.0, -2.0], 0.25);
        let o = GmmOracle::new(Sde::vp(), Gmm2::isotropic(vec![m], v.sqrt()).unwrap()).unwrap();
        let x = [0.3, 0.7, -1.0, 2.0];
        let t = [0.2, 0.9];
        let got = to_host(
            o.denoised_rows(from_host(&x, [2, 2], &Device::flex()).unwrap(), &t)
                .unwrap(),
        )
        .unwrap();
        for i in 0..2 {
            let (a, s) = Sde::vp().marginal(t[i]).unwrap();
            for j in 0..2 {
                let want = m[j] + a * v * (x[2 * i + j] - a * m[j]) / (a * a * v + s * s);
                assert!((got[2 * i + j] - want).abs() < 1e-9, "{got:?}");
            }
        }
        let x3 = from_host(&x, [2, 2], &Device::flex()).unwrap();
        assert!(o.denoised_rows(x3, &[0.5]).is_err());
    }
}
