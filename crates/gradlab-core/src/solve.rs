//! The one loop that runs an iterative method on a [`crate::problem`]: [`solve`] calls the
//! method's [`Solver::step`] until its [`Solver::converged`] holds (checked before every step, so
//! a converged start takes none), the iteration budget is spent, or the observer asks to stop, and
//! shows the observer every iterate (x₀ first). Methods keep their own state; the loop owns the
//! budget, the stopping and the reporting.
//!
//! ```
//! use gradlab_core::solve::{Control, Solver, Iteration, solve};
//! /// x ← x/2 on a scalar, converged below 1e-3.
//! struct Halve;
//! impl Solver<()> for Halve {
//!     type State = Vec<f64>;
//!     type Error = gradlab_core::CoreError;
//!     fn init(&mut self, _: &(), x0: &[f64]) -> gradlab_core::Result<Vec<f64>> { Ok(x0.to_vec()) }
//!     fn converged(&self, x: &Vec<f64>) -> bool { x[0].abs() < 1e-3 }
//!     fn step(&mut self, _: &(), x: &mut Vec<f64>) -> gradlab_core::Result<()> {
//!         x[0] /= 2.0;
//!         Ok(())
//!     }
//!     fn iteration<'a>(&self, x: &'a Vec<f64>) -> Iteration<'a> { Iteration::at(x) }
//! }
//! let mut seen = vec![];
//! let (x, report) = solve(&mut Halve, &(), &[1.0], 100, &mut |it: &Iteration| {
//!     seen.push(it.x[0]);
//!     Control::Continue
//! }).unwrap();
//! assert_eq!((report.iterations, report.converged), (10, true));
//! assert_eq!(seen.len(), 11); // x₀ and ten iterates
//! assert!(x[0] < 1e-3);
//! ```

use crate::CoreError;
use std::result::Result;

/// What a method reports of an iterate.
#[derive(Debug, Clone, Copy)]
pub struct Iteration<'a> {
    /// The iteration (0: the starting point).
    pub iteration: usize,
    /// The iterate.
    pub x: &'a [f64],
    /// f(x), where the method computes it.
    pub cost: Option<f64>,
    /// ‖∇f(x)‖, where the method computes it.
    pub grad_norm: Option<f64>,
    /// Problem evaluations (or linear solves, or samples: the method's unit of work) so far.
    pub work: usize,
    /// The batch size the next step draws, for methods that choose it.
    pub batch: Option<usize>,
}

impl<'a> Iteration<'a> {
    /// An iterate with nothing but its point.
    pub fn at(x: &'a [f64]) -> Self {
        Self {
            iteration: 0,
            x,
            cost: None,
            grad_norm: None,
            work: 0,
            batch: None,
        }
    }
}

/// What an observer tells the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this iterate (the run is then not converged).
    Stop,
}

/// Sees every iterate; a closure `FnMut(&Iteration) -> Control` is one.
pub trait Observer {
    /// Called with x₀ and after every step.
    fn observe(&mut self, it: &Iteration<'_>) -> Control;
}

impl<F: FnMut(&Iteration<'_>) -> Control> Observer for F {
    fn observe(&mut self, it: &Iteration<'_>) -> Control {
        self(it)
    }
}

/// An observer that sees nothing and never stops.
pub struct Silent;

impl Observer for Silent {
    fn observe(&mut self, _: &Iteration<'_>) -> Control {
        Control::Continue
    }
}

/// An observer whose work can fail (it evaluates, writes, plots): the first error stops the run
/// and is kept for the caller ([`Fallible::finish`]).
///
/// ```
/// use gradlab_core::solve::{Fallible, Iteration};
/// use gradlab_core::solve::Observer;
/// let mut obs = Fallible::new(|it: &Iteration| if it.iteration < 2 { Ok(()) } else { Err("too far") });
/// let mut it = Iteration::at(&[0.0]);
/// for k in 0..4 {
///     it.iteration = k;
///     obs.observe(&it);
/// }
/// assert_eq!(obs.finish(), Err("too far"));
/// ```
pub struct Fallible<F, E> {
    f: F,
    error: Option<E>,
}

impl<F, E> Fallible<F, E> {
    /// `f` as an observer.
    pub fn new(f: F) -> Self {
        Self { f, error: None }
    }

    /// The first error the observer met, if any.
    pub fn finish(self) -> Result<(), E> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<F: FnMut(&Iteration<'_>) -> Result<(), E>, E> Observer for Fallible<F, E> {
    fn observe(&mut self, it: &Iteration<'_>) -> Control {
        if self.error.is_some() {
            return Control::Stop;
        }
        match (self.f)(it) {
            Ok(()) => Control::Continue,
            Err(e) => {
                self.error = Some(e);
                Control::Stop
            }
        }
    }
}

/// An iterative method on problems `P`.
pub trait Solver<P: ?Sized> {
    /// Its state: the iterate and whatever it carries between steps.
    type State;
    /// Its error (a problem's [`CoreError`] converts into it).
    type Error: From<CoreError>;
    /// The state at `x0` (checked and evaluated as the method needs).
    fn init(&mut self, problem: &P, x0: &[f64]) -> Result<Self::State, Self::Error>;
    /// Whether the method's stopping rule holds at `state` (checked before every step).
    fn converged(&self, state: &Self::State) -> bool;
    /// One iteration.
    fn step(&mut self, problem: &P, state: &mut Self::State) -> Result<(), Self::Error>;
    /// What the observer sees of `state` (the loop fills in the iteration number).
    fn iteration<'a>(&self, state: &'a Self::State) -> Iteration<'a>;
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Iterations taken.
    pub iterations: usize,
    /// Whether the method's stopping rule ended it.
    pub converged: bool,
    /// Whether the observer ended it.
    pub stopped: bool,
}

/// Run `solver` on `problem` from `x0` for at most `max_iters` iterations, showing `observer`
/// every iterate; returns the final state and how the run ended. An error of the method or the
/// problem ends the run with that error.
pub fn solve<P: ?Sized, S: Solver<P>>(
    solver: &mut S,
    problem: &P,
    x0: &[f64],
    max_iters: usize,
    observer: &mut impl Observer,
) -> Result<(S::State, Report), S::Error> {
    let mut state = solver.init(problem, x0)?;
    let mut report = Report {
        iterations: 0,
        converged: false,
        stopped: false,
    };
    let show = |solver: &S,
                state: &S::State,
                k: usize,
                observer: &mut dyn FnMut(&Iteration) -> Control| {
        let mut it = solver.iteration(state);
        it.iteration = k;
        observer(&it)
    };
    let mut obs = |it: &Iteration| observer.observe(it);
    if show(solver, &state, 0, &mut obs) == Control::Stop {
        report.stopped = true;
        return Ok((state, report));
    }
    for k in 1..=max_iters {
        if solver.converged(&state) {
            break;
        }
        solver.step(problem, &mut state)?;
        report.iterations = k;
        if show(solver, &state, k, &mut obs) == Control::Stop {
            report.stopped = true;
            break;
        }
    }
    report.converged = solver.converged(&state);
    Ok((state, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(usize);
    impl Solver<()> for Count {
        type State = Vec<f64>;
        type Error = CoreError;
        fn init(&mut self, _: &(), x0: &[f64]) -> Result<Vec<f64>, CoreError> {
            Ok(x0.to_vec())
        }
        fn converged(&self, x: &Vec<f64>) -> bool {
            x[0] == 1000.0
        }
        fn step(&mut self, _: &(), x: &mut Vec<f64>) -> Result<(), CoreError> {
            self.0 += 1;
            x[0] += 1.0;
            if x[0] > 100.0 {
                return Err(crate::CoreError::Failed("too far".into()));
            }
            Ok(())
        }
        fn iteration<'a>(&self, x: &'a Vec<f64>) -> Iteration<'a> {
            Iteration::at(x)
        }
    }

    #[test]
    fn the_budget_the_observer_and_errors_end_a_run() {
        let (x, r) = solve(&mut Count(0), &(), &[0.0], 5, &mut Silent).unwrap();
        assert_eq!(
            (x[0], r.iterations, r.converged, r.stopped),
            (5.0, 5, false, false)
        );
        let mut stop_at_3 = |it: &Iteration| {
            if it.iteration == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        };
        let (x, r) = solve(&mut Count(0), &(), &[0.0], 50, &mut stop_at_3).unwrap();
        assert_eq!((x[0], r.iterations, r.stopped), (3.0, 3, true));
        assert!(solve(&mut Count(0), &(), &[0.0], 500, &mut Silent).is_err());
        // A converged start takes no step.
        let (x, r) = solve(&mut Count(0), &(), &[1000.0], 5, &mut Silent).unwrap();
        assert_eq!((x[0], r.iterations, r.converged), (1000.0, 0, true));
    }
}
