//! The ODE solver core every deterministic sampler reuses: dx/dt = F(x, t) integrated from t₀ to
//! t₁ (either direction) with fixed-step Euler or Heun, or adaptive Dormand–Prince RK45 (the
//! method of scipy's `RK45`, which the score-SDE code calls): local error estimated by the embedded
//! 4th-order solution, accepted when its RMS over all values, scaled by atol + rtol·|x|, is ≤ 1.
//! Every solver reports its function evaluations (NFE).
//!
//! ```
//! use gradlab_generative::{Batch, ode::{Solver, integrate}};
//! // dx/dt = −x from x(0) = 1: x(1) = e⁻¹.
//! let x0 = Batch::new(1, 1, vec![1.0]).unwrap();
//! let rhs = |x: &Batch, _t: f64| Ok(Batch { data: x.data.iter().map(|v| -v).collect(), ..x.clone() });
//! let (x1, nfe) = integrate(&rhs, x0, 0.0, 1.0, Solver::Rk45 { rtol: 1e-8, atol: 1e-10 }).unwrap();
//! assert!((x1.data[0] - (-1.0f64).exp()).abs() < 1e-7 && nfe > 6);
//! ```

use crate::{Batch, GenError, Result, invalid};

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

/// x + Σ hᵢ·kᵢ.
fn combine(x: &Batch, terms: &[(f64, &Batch)]) -> Batch {
    let mut data = x.data.clone();
    for (h, k) in terms {
        if *h != 0.0 {
            data.iter_mut().zip(&k.data).for_each(|(a, b)| *a += h * b);
        }
    }
    Batch { data, ..*x }
}

/// Integrate dx/dt = `rhs`(x, t) from `t0` to `t1`; returns x(t₁) and the number of evaluations.
pub fn integrate<F>(rhs: &F, x0: Batch, t0: f64, t1: f64, solver: Solver) -> Result<(Batch, usize)>
where
    F: Fn(&Batch, f64) -> Result<Batch>,
{
    solver.validate()?;
    let mut nfe = 0;
    let mut eval = |x: &Batch, t: f64| -> Result<Batch> {
        nfe += 1;
        let k = rhs(x, t)?;
        if k.data.len() != x.data.len() {
            return invalid("the ODE's right-hand side changed the batch shape");
        }
        if !k.is_finite() {
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
                x = x.axpy(h, &k);
            }
            x
        }
        Solver::Heun(n) => {
            let h = (t1 - t0) / n as f64;
            let mut x = x0;
            for i in 0..n {
                let t = t0 + i as f64 * h;
                let k1 = eval(&x, t)?;
                let xp = x.axpy(h, &k1);
                let k2 = eval(&xp, t + h)?;
                x = combine(&x, &[(0.5 * h, &k1), (0.5 * h, &k2)]);
            }
            x
        }
        Solver::Rk45 { rtol, atol } => dopri5(&mut eval, x0, t0, t1, rtol, atol)?,
    };
    Ok((x, nfe))
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

fn dopri5<G>(eval: &mut G, x0: Batch, t0: f64, t1: f64, rtol: f64, atol: f64) -> Result<Batch>
where
    G: FnMut(&Batch, f64) -> Result<Batch>,
{
    let span = t1 - t0;
    if span == 0.0 {
        return Ok(x0);
    }
    let dir = span.signum();
    let (mut x, mut t) = (x0, t0);
    let mut k1 = eval(&x, t)?;
    let mut h = initial_step(&x, &k1, rtol, atol).min(span.abs());
    let mut tries = 0usize;
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
            let terms: Vec<(f64, &Batch)> = a.iter().zip(&ks).map(|(ai, k)| (hs * ai, k)).collect();
            let xi = combine(&x, &terms);
            ks.push(eval(&xi, t + C[i] * hs)?);
        }
        // ks[6] is the derivative at the 5th-order solution (FSAL).
        let terms: Vec<(f64, &Batch)> = A[5].iter().zip(&ks).map(|(ai, k)| (hs * ai, k)).collect();
        let x_new = combine(&x, &terms);
        let mut err = 0.0;
        for j in 0..x.data.len() {
            let e: f64 = E.iter().zip(&ks).map(|(ei, k)| ei * k.data[j]).sum::<f64>() * hs;
            let scale = atol + rtol * x.data[j].abs().max(x_new.data[j].abs());
            err += (e / scale).powi(2);
        }
        let err = (err / x.data.len().max(1) as f64).sqrt();
        if err <= 1.0 {
            t = if last { t1 } else { t + hs };
            x = x_new;
            k1 = ks.pop().expect("seven stages");
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
fn initial_step(x: &Batch, f: &Batch, rtol: f64, atol: f64) -> f64 {
    let norm = |v: &[f64]| {
        let s: f64 = v
            .iter()
            .zip(&x.data)
            .map(|(a, xi)| (a / (atol + rtol * xi.abs())).powi(2))
            .sum();
        (s / v.len().max(1) as f64).sqrt()
    };
    let (d0, d1) = (norm(&x.data), norm(&f.data));
    if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decay(x: &Batch, _t: f64) -> Result<Batch> {
        Ok(Batch {
            data: x.data.iter().map(|v| -v).collect(),
            ..x.clone()
        })
    }

    #[test]
    fn orders_of_convergence() {
        let x0 = Batch::new(1, 1, vec![1.0]).unwrap();
        let exact = (-1.0f64).exp();
        let err = |s: Solver| {
            (integrate(&decay, x0.clone(), 0.0, 1.0, s).unwrap().0.data[0] - exact).abs()
        };
        // Halving the step: Euler's error halves, Heun's quarters.
        let (e1, e2) = (err(Solver::Euler(50)), err(Solver::Euler(100)));
        assert!((e1 / e2 - 2.0).abs() < 0.1, "{}", e1 / e2);
        let (h1, h2) = (err(Solver::Heun(50)), err(Solver::Heun(100)));
        assert!((h1 / h2 - 4.0).abs() < 0.2, "{}", h1 / h2);
        // RK45 meets its tolerance, and tighter tolerances cost more evaluations.
        let (x, n_loose) = integrate(
            &decay,
            x0.clone(),
            0.0,
            1.0,
            Solver::Rk45 {
                rtol: 1e-4,
                atol: 1e-6,
            },
        )
        .unwrap();
        assert!((x.data[0] - exact).abs() < 1e-4);
        let (x, n_tight) = integrate(
            &decay,
            x0.clone(),
            0.0,
            1.0,
            Solver::Rk45 {
                rtol: 1e-10,
                atol: 1e-12,
            },
        )
        .unwrap();
        assert!((x.data[0] - exact).abs() < 1e-9 && n_tight > n_loose);
    }

    #[test]
    fn integrates_backwards_and_rejects_bad_settings() {
        // dx/dt = t from x(1) = 0 back to t = 0: x(0) = −½.
        let rhs = |x: &Batch, t: f64| {
            Ok(Batch {
                data: vec![t; x.data.len()],
                ..x.clone()
            })
        };
        let x1 = Batch::new(1, 1, vec![0.0]).unwrap();
        for s in [
            Solver::Heun(10),
            Solver::Rk45 {
                rtol: 1e-8,
                atol: 1e-10,
            },
        ] {
            let (x, _) = integrate(&rhs, x1.clone(), 1.0, 0.0, s).unwrap();
            assert!((x.data[0] + 0.5).abs() < 1e-9, "{s:?}: {}", x.data[0]);
        }
        assert!(integrate(&rhs, x1.clone(), 1.0, 0.0, Solver::Euler(0)).is_err());
        assert!(
            integrate(
                &rhs,
                x1.clone(),
                1.0,
                0.0,
                Solver::Rk45 {
                    rtol: 0.0,
                    atol: 1e-6
                }
            )
            .is_err()
        );
        let nan = |x: &Batch, _t: f64| {
            Ok(Batch {
                data: vec![f64::NAN; x.data.len()],
                ..x.clone()
            })
        };
        assert!(matches!(
            integrate(&nan, x1, 1.0, 0.0, Solver::Euler(3)),
            Err(GenError::NonFinite { step: 1, .. })
        ));
    }
}
