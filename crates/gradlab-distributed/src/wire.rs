//! The runtime's messages as flat `f64` buffers, for transports that move numbers between
//! processes (MPI). Integers are stored exactly (they stay far below 2⁵³); a failure's text is
//! stored one UTF-8 byte per value. Decoding checks every length and tag and returns an error, never
//! a partial message.

use crate::code::Task;
use crate::runtime::{FromWorker, ToWorker};
use crate::{DistError, Result};
use std::time::Duration;

const STOP: f64 = 0.0;
const WORK: f64 = 1.0;
const DONE: f64 = 2.0;
const FAILED: f64 = 3.0;

fn bad(why: impl Into<String>) -> DistError {
    DistError::Transport(format!("malformed message: {}", why.into()))
}

/// Reads a buffer front to back.
struct Reader<'a> {
    buf: &'a [f64],
    at: usize,
}

impl Reader<'_> {
    fn f(&mut self) -> Result<f64> {
        let v = *self.buf.get(self.at).ok_or_else(|| bad("truncated"))?;
        self.at += 1;
        Ok(v)
    }
    fn u(&mut self) -> Result<usize> {
        let v = self.f()?;
        if v < 0.0 || v.fract() != 0.0 || v > 9.0e15 {
            return Err(bad(format!("{v} is not a count")));
        }
        Ok(v as usize)
    }
    fn slice(&mut self, n: usize) -> Result<&[f64]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| bad("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn done(&self) -> Result<()> {
        if self.at == self.buf.len() {
            Ok(())
        } else {
            Err(bad("trailing values"))
        }
    }
}

/// Master → worker, flattened.
pub fn encode_to_worker(m: &ToWorker) -> Vec<f64> {
    match m {
        ToWorker::Stop => vec![STOP],
        ToWorker::Work {
            round,
            tasks,
            models,
            delay,
        } => {
            let mut b = vec![WORK, *round as f64, delay.as_secs_f64(), tasks.len() as f64];
            for t in tasks {
                b.push(t.job as f64);
                b.push(t.coeffs.len() as f64);
                for &(p, c) in &t.coeffs {
                    b.push(p as f64);
                    b.push(c);
                }
            }
            b.push(models.len() as f64);
            for (j, w) in models {
                b.push(*j as f64);
                b.push(w.len() as f64);
                b.extend_from_slice(w);
            }
            b
        }
    }
}

/// The inverse of [`encode_to_worker`].
pub fn decode_to_worker(buf: &[f64]) -> Result<ToWorker> {
    let mut r = Reader { buf, at: 0 };
    let tag = r.f()?;
    if tag == STOP {
        r.done()?;
        return Ok(ToWorker::Stop);
    }
    if tag != WORK {
        return Err(bad(format!("tag {tag}")));
    }
    let round = r.u()?;
    let secs = r.f()?;
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(bad(format!("delay {secs}")));
    }
    let n = r.u()?;
    let mut tasks = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let job = r.u()?;
        let k = r.u()?;
        let mut coeffs = Vec::with_capacity(k.min(1 << 16));
        for _ in 0..k {
            coeffs.push((r.u()?, r.f()?));
        }
        tasks.push(Task { job, coeffs });
    }
    let m = r.u()?;
    let mut models = Vec::with_capacity(m.min(1 << 16));
    for _ in 0..m {
        let j = r.u()?;
        let len = r.u()?;
        models.push((j, r.slice(len)?.to_vec()));
    }
    r.done()?;
    Ok(ToWorker::Work {
        round,
        tasks,
        models,
        delay: Duration::from_secs_f64(secs),
    })
}

/// Worker → master, flattened.
pub fn encode_from_worker(m: &FromWorker) -> Vec<f64> {
    match m {
        FromWorker::Done {
            worker,
            round,
            results,
        } => {
            let mut b = vec![DONE, *worker as f64, *round as f64, results.len() as f64];
            for v in results {
                b.push(v.len() as f64);
                b.extend_from_slice(v);
            }
            b
        }
        FromWorker::Failed { worker, why } => {
            let mut b = vec![FAILED, *worker as f64, why.len() as f64];
            b.extend(why.bytes().map(f64::from));
            b
        }
    }
}

/// The inverse of [`encode_from_worker`].
pub fn decode_from_worker(buf: &[f64]) -> Result<FromWorker> {
    let mut r = Reader { buf, at: 0 };
    let tag = r.f()?;
    let worker = r.u()?;
    let out = if tag == DONE {
        let round = r.u()?;
        let n = r.u()?;
        let mut results = Vec::with_capacity(n.min(1 << 16));
        for _ in 0..n {
            let len = r.u()?;
            results.push(r.slice(len)?.to_vec());
        }
        FromWorker::Done {
            worker,
            round,
            results,
        }
    } else if tag == FAILED {
        let len = r.u()?;
        let bytes: Vec<u8> = r.slice(len)?.iter().map(|v| *v as u8).collect();
        FromWorker::Failed {
            worker,
            why: String::from_utf8_lossy(&bytes).into_owned(),
        }
    } else {
        return Err(bad(format!("tag {tag}")));
    };
    r.done()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_damage_is_an_error() {
        let work = ToWorker::Work {
            round: 7,
            tasks: vec![
                Task {
                    job: 3,
                    coeffs: vec![(0, 1.5), (4, -2.0)],
                },
                Task {
                    job: 5,
                    coeffs: vec![(2, 1.0)],
                },
            ],
            models: vec![(3, vec![0.1, 0.2]), (5, vec![])],
            delay: Duration::from_millis(12),
        };
        let b = encode_to_worker(&work);
        match decode_to_worker(&b).unwrap() {
            ToWorker::Work {
                round,
                tasks,
                models,
                delay,
            } => {
                assert_eq!(
                    (round, tasks.len(), models[0].1.clone(), delay),
                    (7, 2, vec![0.1, 0.2], Duration::from_millis(12))
                );
                assert_eq!(tasks[0].coeffs, vec![(0, 1.5), (4, -2.0)]);
            }
            ToWorker::Stop => panic!("decoded a stop"),
        }
        assert!(matches!(
            decode_to_worker(&encode_to_worker(&ToWorker::Stop)).unwrap(),
            ToWorker::Stop
        ));
        assert!(decode_to_worker(&b[..b.len() - 1]).is_err());
        assert!(decode_to_worker(&[9.0]).is_err());
        let mut extra = b.clone();
        extra.push(1.0);
        assert!(decode_to_worker(&extra).is_err());
        let done = FromWorker::Done {
            worker: 2,
            round: 7,
            results: vec![vec![1.0, 2.0], vec![]],
        };
        assert!(
            matches!(decode_from_worker(&encode_from_worker(&done)).unwrap(), FromWorker::Done { worker: 2, round: 7, ref results } if results[0] == vec![1.0, 2.0])
        );
        let failed = FromWorker::Failed {
            worker: 1,
            why: "partition 2 is corrupt ✗".into(),
        };
        assert!(
            matches!(decode_from_worker(&encode_from_worker(&failed)).unwrap(), FromWorker::Failed { worker: 1, ref why } if why == "partition 2 is corrupt ✗")
        );
        assert!(decode_from_worker(&[2.0, 1.5]).is_err());
    }
}
