//! The one collective operation data-parallel training needs: an element-wise sum over a group
//! of members, which every member receives (all-reduce). One trait, three groups: [`Solo`] (a
//! group of one), [`ThreadGroup`] (threads of one process, for tests and single machines), and an
//! MPI communicator (`gradlab-mpi`, cargo feature `mpi`).
//!
//! ```
//! use gradlab_core::collective::{Collective, ThreadGroup};
//! let members = ThreadGroup::new(3).unwrap();
//! let sums: Vec<Vec<f64>> = std::thread::scope(|s| {
//!     let handles: Vec<_> = members
//!         .into_iter()
//!         .map(|mut m| s.spawn(move || {
//!             let mut buf = vec![m.rank() as f64, 1.0];
//!             m.all_reduce_sum(&mut buf).unwrap();
//!             buf
//!         }))
//!         .collect();
//!     handles.into_iter().map(|h| h.join().unwrap()).collect()
//! });
//! assert!(sums.iter().all(|b| b == &[3.0, 3.0])); // 0 + 1 + 2, and 1 + 1 + 1
//! ```

use crate::{CoreError, Result};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A group of members that sum vectors together.
pub trait Collective {
    /// This member's index, 0 … size − 1.
    fn rank(&self) -> usize;
    /// The number of members.
    fn size(&self) -> usize;
    /// Replace `buf` by the element-wise sum of every member's `buf` (all members call this with
    /// buffers of the same length, in the same order of calls). The sum is taken in rank order,
    /// so it is the same on every member and in every run.
    fn all_reduce_sum(&mut self, buf: &mut [f64]) -> Result<()>;

    /// Whether every member's `values` equal member 0's, bit for bit up to the sign of zero
    /// (every member gets the same answer). All members call it with the same length.
    fn all_agree(&mut self, values: &[f64]) -> Result<bool> {
        let mut root = if self.rank() == 0 {
            values.to_vec()
        } else {
            vec![0.0; values.len()]
        };
        self.all_reduce_sum(&mut root)?;
        let mut differ = [f64::from(u8::from(root.as_slice() != values))];
        self.all_reduce_sum(&mut differ)?;
        Ok(differ[0] == 0.0)
    }
}

/// A group of one: the sum is the buffer itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&mut self, _buf: &mut [f64]) -> Result<()> {
        Ok(())
    }
}

/// The shared state of a [`ThreadGroup`]: each round, every member deposits its buffer, the last
/// to arrive sums them in rank order, and every member collects the sum.
struct Round {
    deposits: Vec<Option<Vec<f64>>>,
    sum: Option<Arc<Vec<f64>>>,
    collected: usize,
    generation: u64,
    failed: Option<String>,
}

struct Shared {
    size: usize,
    timeout: Duration,
    state: Mutex<Round>,
    changed: Condvar,
}

/// One member of a group of threads ([`ThreadGroup::new`] makes all of them; move each into
/// its thread). A member that waits longer than the group's timeout for the others (one has
/// stopped, or called with a different length) gets an error, never a hang.
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

impl ThreadGroup {
    /// `size` members with a 60-second timeout; an error for an empty group.
    pub fn new(size: usize) -> Result<Vec<ThreadGroup>> {
        Self::with_timeout(size, Duration::from_secs(60))
    }

    /// `size` members that give up after waiting `timeout` for the others.
    pub fn with_timeout(size: usize, timeout: Duration) -> Result<Vec<ThreadGroup>> {
        if size == 0 {
            return Err(CoreError::Failed(
                "a group needs at least one member".into(),
            ));
        }
        let shared = Arc::new(Shared {
            size,
            timeout,
            state: Mutex::new(Round {
                deposits: vec![None; size],
                sum: None,
                collected: 0,
                generation: 0,
                failed: None,
            }),
            changed: Condvar::new(),
        });
        Ok((0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect())
    }

    fn fail(&self, round: &mut Round, why: String) -> CoreError {
        round.failed.get_or_insert(why.clone());
        self.shared.changed.notify_all();
        CoreError::Failed(why)
    }
}

impl Drop for ThreadGroup {
    /// A member that leaves (its thread returned or panicked) releases the others with an error.
    fn drop(&mut self) {
        if let Ok(mut round) = self.shared.state.lock() {
            round
                .failed
                .get_or_insert(format!("member {} left the group", self.rank));
            self.shared.changed.notify_all();
        }
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.shared.size
    }
    fn all_reduce_sum(&mut self, buf: &mut [f64]) -> Result<()> {
        let sh = &*self.shared;
        let poisoned = |_| CoreError::Failed("a member panicked inside the all-reduce".into());
        let mut round = sh.state.lock().map_err(poisoned)?;
        let deadline = std::time::Instant::now().checked_add(sh.timeout);
        // A previous round still being collected: wait until it is cleared.
        while round.sum.is_some() && round.failed.is_none() {
            round = wait(sh, round, deadline)?;
        }
        if let Some(why) = &round.failed {
            return Err(CoreError::Failed(why.clone()));
        }
        round.deposits[self.rank] = Some(buf.to_vec());
        let generation = round.generation;
        if round.deposits.iter().all(Option::is_some) {
            let parts: Vec<Vec<f64>> = round.deposits.iter_mut().filter_map(Option::take).collect();
            if let Some(bad) = parts.iter().position(|p| p.len() != parts[0].len()) {
                let why = format!(
                    "all-reduce with buffers of different lengths ({} on member 0, {} on member {bad})",
                    parts[0].len(),
                    parts[bad].len()
                );
                return Err(self.fail(&mut round, why));
            }
            let mut sum = vec![0.0; parts[0].len()];
            for p in &parts {
                for (s, v) in sum.iter_mut().zip(p) {
                    *s += v;
                }
            }
            round.sum = Some(Arc::new(sum));
            round.generation += 1;
            sh.changed.notify_all();
        } else {
            while round.generation == generation && round.failed.is_none() {
                round = wait(sh, round, deadline)?;
            }
            if round.generation == generation {
                return Err(CoreError::Failed(round.failed.clone().unwrap_or_default()));
            }
        }
        let Some(sum) = round.sum.clone() else {
            return Err(CoreError::Failed(round.failed.clone().unwrap_or_default()));
        };
        if sum.len() != buf.len() {
            return Err(self.fail(
                &mut round,
                "all-reduce with buffers of different lengths".into(),
            ));
        }
        buf.copy_from_slice(&sum);
        round.collected += 1;
        if round.collected == sh.size {
            round.collected = 0;
            round.sum = None;
            sh.changed.notify_all();
        }
        Ok(())
    }
}

/// Wait for a change until `deadline` (none: no limit). A timeout is recorded as the group's
/// failure while the lock is still held, so no other member can complete the round in between:
/// either every member of a round gets its sum, or every member an error.
fn wait<'a>(
    sh: &'a Shared,
    mut round: std::sync::MutexGuard<'a, Round>,
    deadline: Option<std::time::Instant>,
) -> Result<std::sync::MutexGuard<'a, Round>> {
    fn poisoned<T>(_: T) -> CoreError {
        CoreError::Failed("a member panicked inside the all-reduce".into())
    }
    let Some(deadline) = deadline else {
        return sh.changed.wait(round).map_err(poisoned);
    };
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    if left.is_zero() {
        let why = format!(
            "a member waited {:?} for the others in an all-reduce",
            sh.timeout
        );
        round.failed.get_or_insert(why.clone());
        sh.changed.notify_all();
        return Err(CoreError::Failed(why));
    }
    match sh.changed.wait_timeout(round, left) {
        Ok((guard, _)) => Ok(guard),
        Err(e) => Err(poisoned(e)),
    }
}
