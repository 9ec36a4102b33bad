//! The ODE solver core every deterministic sampler reuses: dx/dt = F(x, t) on burn tensors of any
//! shape, integrated from t₀ to t₁ (either direction) with fixed-step Euler or Heun, or adaptive
//! Dormand–Prince RK45 (the method of scipy's `RK45`, which the score-SDE code calls): local error
//! estimated by the embedded 4th-order solution, accepted when its RMS over all values, scaled by
//! atol + rtol·|x|, is ≤ 1. Every solver reports its function evaluations (NFE) and shows each
//! accepted step to an observer.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::ode::{Solver, integrate};
//! use gradlab_generative::sampling::Unobserved;
//! // dx/dt = −x from x(0) = 1: x(1) = e⁻¹.
//! let x0 = gradlab_core::bridge::from_host(&[1.0], [1, 1], &Device::flex()).unwrap();
//! let rhs = |x: &Tensor<2>, _t: f64| Ok(-x.clone());
//! let solver = Solver::Rk45 { rtol: 1e-8, atol: 1e-10 };
//! let (x1, nfe) = integrate(rhs, x0, 0.0, 1.0, solver, &mut Unobserved).unwrap();
//! let x1 = gradlab_core::bridge::to_host(x1).unwrap();
//! assert!((x1[0] - (-1.0f64).exp()).abs() < 1e-7 && nfe > 6);
//! ```

use crate::sampling::StepObserver;
use crate::{GenError, Result, invalid};
use burn::prelude::*;

/// A solver and its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Solver {
    /// Explicit Euler with this many equal steps.
    Euler(usize),
    /// Heun's method (trapezoidal predictor–corrector, 2 NFE per step) with this many steps.
    Heun(usize),
    /// Adaptive Dormand–Prince 5(4) with relative and absolute tolerances.
    Rk45 {
        /// Relative tolerance > 0.
        rtol: f64,
        /// Absolute tolerance > 0.
        atol: f64,
    },
}

impl Solver {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a > b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        match *self {
            Solver::Euler(0) | Solver::Heun(0) => {
                invalid("a fixed-step solver needs at least 1 step")
            }
            Solver::Rk45 { rtol, atol } if !(rtol > 0.0 && atol > 0.0) => invalid(format!(
                "RK45 tolerances must be > 0, got rtol = {rtol}, atol = {atol}"
            )),
            _ => Ok(()),
        }
    }
}

/// True if every value of `x` is finite.
pub(crate) fn all_finite<const D: usize>(x: &Tensor<D>) -> bool {
    x.clone().is_finite().all().into_scalar::<bool>()
}

/// Integrate dx/dt = `rhs`(x, t) from `t0` to `t1`, showing `observer` each accepted step;
/// returns x(t₁) and the number of evaluations.
pub fn integrate<const D: usize, F>(
    mut rhs: F,
    x0: Tensor<D>,
    t0: f64,
    t1: f64,
    solver: Solver,
    observer: &mut impl StepObserver<D>,
) -> Result<(Tensor<D>, usize)>
where
    F: FnMut(&Tensor<D>, f64) -> Result<Tensor<D>>,
{
    solver.validate()?;
    let mut nfe = 0;
    let mut eval = |x: &Tensor<D>, t: f64| -> Result<Tensor<D>> {
        nfe += 1;
        let k = rhs(x, t)?;
        if k.dims() != x.dims() {
            return invalid("the ODE's right-hand side changed the batch shape");
        }
        if !all_finite(&k) {
            return Err(GenError::NonFinite {
                what: "ODE right-hand side",
                step: nfe,
                t,
            });
        }
        Ok(k)
    };
    let x = match solver {
        Solver::Euler(n) => {
            let h = (t1 - t0) / n as f64;
            let mut x = x0;
            for i in 0..n {
                let k = eval(&x, t0 + i as f64 * h)?;
                x = x + k * h;
                observer.observe(i, step_end(i, n, t0, t1, h), &x);
            }
            x
        }
        Solver::Heun(n) => {
            let h = (t1 - t0) / n as f64;
            let mut x = x0;
            for i in 0..n {
                let t = t0 + i as f64 * h;
                let k1 = eval(&x, t)?;
                let xp = x.clone() + k1.clone() * h;
                let k2 = eval(&xp, t + h)?;
                x = x + k1 * (0.5 * h) + k2 * (0.5 * h);
                observer.observe(i, step_end(i, n, t0, t1, h), &x);
            }
            x
        }
        Solver::Rk45 { rtol, atol } => dopri5(&mut eval, x0, (t0, t1), (rtol, atol), observer)?,
    };
    Ok((x, nfe))
}

/// The time reached by fixed step `i` of `n` (exactly `t1` at the last).
fn step_end(i: usize, n: usize, t0: f64, t1: f64, h: f64) -> f64 {
    if i + 1 == n {
        t1
    } else {
        t0 + (i + 1) as f64 * h
    }
}

// Dormand–Prince 5(4) tableau.
const C: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// 5th-order weights minus the embedded 4th-order weights (the error estimate).
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// x + Σ hᵢ·kᵢ (terms with hᵢ = 0 skipped).
fn combine<const D: usize>(
    x: &Tensor<D>,
    terms: impl IntoIterator<Item = (f64, Tensor<D>)>,
) -> Tensor<D> {
    terms
        .into_iter()
        .filter(|(h, _)| *h != 0.0)
        .fold(x.clone(), |acc, (h, k)| acc + k * h)
}

/// The RMS over all values of `v`/(atol + rtol·`scale`), as f64.
fn tolerance_norm<const D: usize>(
    v: Tensor<D>,
    scale: Tensor<D>,
    (rtol, atol): (f64, f64),
) -> Result<f64> {
    let n = v.shape().num_elements().max(1) as f64;
    let ratio = v / (scale * rtol + atol);
    let ss = gradlab_core::bridge::scalar_to_host(ratio.square().sum())?;
    Ok((ss / n).sqrt())
}

fn dopri5<const D: usize, G>(
    eval: &mut G,
    x0: Tensor<D>,
    (t0, t1): (f64, f64),
    tol: (f64, f64),
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>>
where
    G: FnMut(&Tensor<D>, f64) -> Result<Tensor<D>>,
{
    let span = t1 - t0;
    if span == 0.0 {
        return Ok(x0);
    }
    let dir = span.signum();
    let (mut x, mut t) = (x0, t0);
    let mut k1 = eval(&x, t)?;
    let mut h = initial_step(&x, &k1, tol)?.min(span.abs());
    let (mut tries, mut accepted) = (0usize, 0usize);
    while (t1 - t) * dir > 0.0 {
        tries += 1;
        if tries > 1_000_000 {
            return invalid("RK45 took more than a million steps; loosen the tolerances");
        }
        let last = h >= (t1 - t).abs();
        h = h.min((t1 - t).abs());
        let hs = h * dir;
        let mut ks = vec![k1.clone()];
        for (i, a) in A.iter().enumerate() {
            let terms: Vec<_> = a
                .iter()
                .zip(&ks)
                .map(|(ai, k)| (hs * ai, k.clone()))
                .collect();
            let xi = combine(&x, terms);
            ks.push(eval(&xi, t + C[i] * hs)?);
        }
        // ks[6] is the derivative at the 5th-order solution (FSAL).
        let terms: Vec<_> = A[5]
            .iter()
            .zip(&ks)
            .map(|(ai, k)| (hs * ai, k.clone()))
            .collect();
        let x_new = combine(&x, terms);
        let e = E
            .iter()
            .zip(&ks)
            .map(|(ei, k)| k.clone() * *ei)
            .reduce(|a, b| a + b)
            .expect("seven stages")
            * hs;
        let scale = x.clone().abs().max_pair(x_new.clone().abs());
        let err = tolerance_norm(e, scale, tol)?;
        if err <= 1.0 {
            t = if last { t1 } else { t + hs };
            x = x_new;
            k1 = ks.pop().expect("seven stages");
            observer.observe(accepted, t, &x);
            accepted += 1;
        }
        let factor = if err == 0.0 {
            10.0
        } else {
            (0.9 * err.powf(-0.2)).clamp(0.2, 10.0)
        };
        h *= if err <= 1.0 { factor } else { factor.min(1.0) };
        if h < 1e-14 * span.abs() {
            return invalid(format!("RK45 step size underflow at t = {t}"));
        }
    }
    Ok(x)
}

/// Hairer's starting step: h = 0.01·‖x‖/‖f‖ in the tolerance norm (at least 1e-6).
fn initial_step<const D: usize>(x: &Tensor<D>, f: &Tensor<D>, tol: (f64, f64)) -> Result<f64> {
    let scale = x.clone().abs();
    let d0 = tolerance_norm(x.clone(), scale.clone(), tol)?;
    let d1 = tolerance_norm(f.clone(), scale, tol)?;
    Ok(if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::Unobserved;
    use gradlab_core::bridge::{from_host, to_host};

    fn scalar(v: f64) -> Tensor<2> {
        from_host(&[v], [1, 1], &Device::flex()).unwrap()
    }

    fn decay(x: &Tensor<2>, _t: f64) -> Result<Tensor<2>> {
        Ok(-x.clone())
    }

    fn solve(s: Solver) -> (f64, usize) {
        let (x, nfe) = integrate(decay, scalar(1.0), 0.0, 1.0, s, &mut Unobserved).unwrap();
        (to_host(x).unwrap()[0], nfe)
    }

    #[test]
    fn orders_of_convergence() {
        let exact = (-1.0f64).exp();
        let err = |s: Solver| (solve(s).0 - exact).abs();
        // Halving the step: Euler's error halves, Heun's quarters.
        let (e1, e2) = (err(Solver::Euler(50)), err(Solver::Euler(100)));
        assert!((e1 / e2 - 2.0).abs() < 0.1, "{}", e1 / e2);
        let (h1, h2) = (err(Solver::Heun(50)), err(Solver::Heun(100)));
        assert!((h1 / h2 - 4.0).abs() < 0.2, "{}", h1 / h2);
        // RK45 meets its tolerance, and tighter tolerances cost more evaluations.
        let (x, n_loose) = solve(Solver::Rk45 {
            rtol: 1e-4,
            atol: 1e-6,
        });
        assert!((x - exact).abs() < 1e-4);
        let (x, n_tight) = solve(Solver::Rk45 {
            rtol: 1e-10,
            atol: 1e-12,
        });
        assert!((x - exact).abs() < 1e-9 && n_tight > n_loose);
    }

    #[test]
    fn integrates_backwards_observes_and_rejects_bad_settings() {
        // dx/dt = t from x(1) = 0 back to t = 0: x(0) = −½.
        let rhs = |x: &Tensor<2>, t: f64| Ok(x.zeros_like() + t);
        for s in [
            Solver::Heun(10),
            Solver::Rk45 {
                rtol: 1e-8,
                atol: 1e-10,
            },
        ] {
            let mut times = vec![];
            let mut seen = |_: usize, t: f64, _: &Tensor<2>| times.push(t);
            let (x, _) = integrate(rhs, scalar(0.0), 1.0, 0.0, s, &mut seen).unwrap();
            let x = to_host(x).unwrap()[0];
            assert!((x + 0.5).abs() < 1e-9, "{s:?}: {x}");
            assert!(times.windows(2).all(|w| w[1] < w[0]) && times.last() == Some(&0.0));
        }
        let no = |s| integrate(rhs, scalar(0.0), 1.0, 0.0, s, &mut Unobserved).is_err();
        assert!(no(Solver::Euler(0)));
        assert!(no(Solver::Rk45 {
            rtol: 0.0,
            atol: 1e-6
        }));
        let nan = |x: &Tensor<2>, _t: f64| Ok(x.zeros_like() + f64::NAN);
        assert!(matches!(
            integrate(
                nan,
                scalar(0.0),
                1.0,
                0.0,
                Solver::Euler(3),
                &mut Unobserved
            ),
            Err(GenError::NonFinite { step: 1, .. })
        ));
    }
}
