//! A trained time-conditioned network as a score model.

use super::{ScoreModel, div, rows};
use crate::process::Process;
use crate::training::Prediction;
use crate::{Result, invalid};
use burn::prelude::*;
use gradlab_nets::TimeNet;

/// A trained time-conditioned network as a score model: its output (score, ε, x₀ or v, as it was
/// trained: [`Prediction`]) converted to the score, on whatever device and with whatever tracking
/// the network and the input have (so gradients reach its parameters on an autodiff device).
/// Examples are flattened to the network's input `[n, d]` (f32, the networks' dtype) and the score
/// takes their shape and dtype again. Sample with the network on the inner device (the training
/// functions return it there): a sampling chain on the autodiff device builds a graph it never
/// uses.
#[derive(Debug, Clone)]
pub struct NetScore<N, P> {
    /// The network.
    pub net: N,
    /// The process it was trained for.
    pub process: P,
    /// What its output is.
    pub prediction: Prediction,
}

impl<const D: usize, N: TimeNet, P: Process> ScoreModel<D> for NetScore<N, P> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (a, s) = self.process.marginal(t)?;
        let (flat, dims) = rows(x);
        let [n, d] = flat.dims();
        check_width(&self.net, d)?;
        let dtype = flat.dtype();
        let input = flat.clone().cast(burn::tensor::DType::F32);
        let times = Tensor::<1>::full([n], t as f32, &input.device());
        let out = self.net.forward_time(input, times).cast(dtype);
        if out.dims() != flat.dims() {
            return invalid(format!(
                "the network returned {:?} for an input of {:?}",
                out.dims(),
                flat.dims()
            ));
        }
        let score = match self.prediction {
            Prediction::Score => out,
            Prediction::Noise => div(out, -s),
            Prediction::Data => div(out * a - flat, s * s),
            Prediction::Velocity => div(flat * s + out * a, -(a * a + s * s) * s),
        };
        Ok(score.reshape(dims))
    }
}

/// An error unless the network takes examples of `d` values.
pub(crate) fn check_width(net: &impl TimeNet, d: usize) -> Result<()> {
    let want = net.data_dim();
    if want != 0 && want != d {
        return invalid(format!(
            "examples of {d} values for a network of dimension {want}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Sde;
    use gradlab_core::bridge::{from_host, from_host_f32, to_host};

    /// A "network" that outputs a fixed value whatever the input.
    #[derive(Module, Debug)]
    struct Fixed {
        out: burn::module::Param<Tensor<2>>,
    }

    impl TimeNet for Fixed {
        fn forward_time(&self, x: Tensor<2>, _t: Tensor<1>) -> Tensor<2> {
            x * 0.0 + self.out.val()
        }
        fn data_dim(&self) -> usize {
            1
        }
    }

    #[test]
    fn every_parameterisation_recovers_the_true_score() {
        // x_t = α x₀ + σ z with exact outputs: the converted score is −z/σ in every case.
        let (sde, t) = (Sde::vp(), 0.4);
        let (a, s) = sde.marginal(t).unwrap();
        let (x0, z) = (0.75f32 as f64, -1.25f32 as f64);
        let x = a * x0 + s * z;
        let dev = Device::flex();
        let outs = [
            (Prediction::Score, -z / s),
            (Prediction::Noise, z),
            (Prediction::Data, x0),
            (Prediction::Velocity, a * z - s * x0),
        ];
        for (prediction, out) in outs {
            let net = Fixed {
                out: burn::module::Param::from_tensor(
                    from_host_f32(&[out as f32], [1, 1], &dev).unwrap(),
                ),
            };
            let model = NetScore {
                net,
                process: sde,
                prediction,
            };
            let got = model
                .score(from_host(&[x], [1, 1], &dev).unwrap(), t)
                .unwrap();
            let got = to_host(got).unwrap()[0];
            // The network's f32 output limits the agreement to ~1e-7 relative.
            assert!(
                (got + z / s).abs() < 1e-6 * (z / s).abs(),
                "{prediction:?}: {got} vs {}",
                -z / s
            );
        }
    }
}
