//! Synthetic adverse-weather videos for ViWS-Net-style restoration: moving smooth scenes, each
//! clip degraded by one of three weathers.
//!
//! - Scene: a base level plus four Gaussian blobs (widths 2–5 px, amplitudes ±0.35) and a gentle
//!   ramp, translated by a per-clip velocity of up to 1 px per frame, in [0, 1].
//! - Rain: 6–12 bright slanted streaks (4–7 px, +0.3–0.5 additive) falling 4 px per frame.
//! - Haze: the atmospheric scattering model I = J·t + A·(1 − t), t = exp(−β·d) with a depth ramp
//!   d (far at the top), β ∈ [0.8, 2], airlight A ∈ [0.7, 0.95].
//! - Snow: 15–30 flakes (a pixel, intensity 0.6–1, taken as the maximum with the scene) falling
//!   1 px per frame with a sideways drift.
//!
//! ```
//! use gradlab_data::weather::{Weather, weather_clips};
//! let clips = weather_clips(6, 5, 16, 0).unwrap();
//! assert_eq!(clips.clean.len(), 6 * 5 * 16 * 16);
//! assert_eq!(clips.weather[..3], [0, 1, 2]); // clips cycle through the weathers
//! assert_eq!(Weather::ALL[1].name(), "haze");
//! ```

use crate::{DataError, Result};
use rand::prelude::*;

/// The three weathers, by label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weather {
    /// Rain streaks (label 0).
    Rain,
    /// Haze (label 1).
    Haze,
    /// Snow (label 2).
    Snow,
}

impl Weather {
    /// All weathers in label order.
    pub const ALL: [Weather; 3] = [Weather::Rain, Weather::Haze, Weather::Snow];

    /// The weather's name.
    pub fn name(self) -> &'static str {
        match self {
            Weather::Rain => "rain",
            Weather::Haze => "haze",
            Weather::Snow => "snow",
        }
    }
}

/// `n` clips of `frames` frames of `size × size` (1 channel), clean and degraded.
#[derive(Debug, Clone, PartialEq)]
pub struct WeatherClips {
    /// Clips.
    pub n: usize,
    /// Frames per clip.
    pub frames: usize,
    /// Frame side.
    pub size: usize,
    /// Clean frames, `n · frames · size · size` values in [0, 1], clip-major.
    pub clean: Vec<f32>,
    /// The same frames degraded by the clip's weather.
    pub degraded: Vec<f32>,
    /// The weather label of each clip (index into [`Weather::ALL`]).
    pub weather: Vec<u8>,
}

impl WeatherClips {
    /// Values per clip.
    pub fn clip_len(&self) -> usize {
        self.frames * self.size * self.size
    }

    /// The centre frame (index frames/2) of clip `i` in `frames` (`clean` or `degraded`).
    pub fn centre<'a>(&self, frames: &'a [f32], i: usize) -> &'a [f32] {
        let f = self.size * self.size;
        let at = i * self.clip_len() + self.frames / 2 * f;
        &frames[at..at + f]
    }
}

/// Draw `n` clips; clip i has weather i mod 3, so every weather is equally present.
pub fn weather_clips(n: usize, frames: usize, size: usize, seed: u64) -> Result<WeatherClips> {
    if n == 0 || frames == 0 || !(8..=256).contains(&size) {
        return Err(DataError::Invalid(format!(
            "weather clips need n ≥ 1, frames ≥ 1 and a side in 8 … 256, got n = {n}, frames = {frames}, side = {size}"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let per = frames * size * size;
    let (mut clean, mut degraded) = (Vec::with_capacity(n * per), Vec::with_capacity(n * per));
    let mut weather = Vec::with_capacity(n);
    for i in 0..n {
        let w = Weather::ALL[i % 3];
        let scene = Scene::draw(&mut rng, size);
        let storm = Storm::draw(&mut rng, w, size);
        for t in 0..frames {
            let frame = scene.render(t as f32, size);
            degraded.extend(storm.apply(&frame, t as f32, size));
            clean.extend(frame);
        }
        weather.push(i as u8 % 3);
    }
    Ok(WeatherClips {
        n,
        frames,
        size,
        clean,
        degraded,
        weather,
    })
}

/// A moving smooth scene.
struct Scene {
    base: f32,
    ramp: (f32, f32),
    blobs: Vec<(f32, f32, f32, f32)>,
    velocity: (f32, f32),
}

impl Scene {
    fn draw(rng: &mut StdRng, size: usize) -> Scene {
        let s = size as f32;
        Scene {
            base: rng.random_range(0.3..0.6),
            ramp: (rng.random_range(-0.15..0.15), rng.random_range(-0.15..0.15)),
            blobs: (0..4)
                .map(|_| {
                    (
                        rng.random_range(0.0..s),
                        rng.random_range(0.0..s),
                        rng.random_range(2.0..5.0),
                        rng.random_range(-0.35..0.35),
                    )
                })
                .collect(),
            velocity: (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)),
        }
    }

    fn render(&self, t: f32, size: usize) -> Vec<f32> {
        let s = size as f32;
        let mut out = Vec::with_capacity(size * size);
        for y in 0..size {
            for x in 0..size {
                let (px, py) = (
                    x as f32 - self.velocity.0 * t,
                    y as f32 - self.velocity.1 * t,
                );
                let mut v = self.base + self.ramp.0 * (px / s - 0.5) + self.ramp.1 * (py / s - 0.5);
                for &(cx, cy, w, a) in &self.blobs {
                    let d2 = (px - cx).powi(2) + (py - cy).powi(2);
                    v += a * (-d2 / (2.0 * w * w)).exp();
                }
                out.push(v.clamp(0.0, 1.0));
            }
        }
        out
    }
}

/// One clip's weather.
enum Storm {
    Rain(Vec<(f32, f32, f32, f32, f32)>),
    Haze { beta: f32, airlight: f32 },
    Snow(Vec<(f32, f32, f32, f32)>),
}

impl Storm {
    fn draw(rng: &mut StdRng, w: Weather, size: usize) -> Storm {
        let s = size as f32;
        match w {
            Weather::Rain => Storm::Rain(
                (0..rng.random_range(6..=12))
                    .map(|_| {
                        (
                            rng.random_range(0.0..s),
                            rng.random_range(0.0..s),
                            rng.random_range(4.0..7.0),
                            rng.random_range(-0.3..0.3),
                            rng.random_range(0.3..0.5),
                        )
                    })
                    .collect(),
            ),
            Weather::Haze => Storm::Haze {
                beta: rng.random_range(0.8..2.0),
                airlight: rng.random_range(0.7..0.95),
            },
            Weather::Snow => Storm::Snow(
                (0..rng.random_range(15..=30))
                    .map(|_| {
                        (
                            rng.random_range(0.0..s),
                            rng.random_range(0.0..s),
                            rng.random_range(-0.5..0.5),
                            rng.random_range(0.6..1.0),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn apply(&self, frame: &[f32], t: f32, size: usize) -> Vec<f32> {
        let s = size as f32;
        let mut out = frame.to_vec();
        match self {
            Storm::Rain(streaks) => {
                for &(x0, y0, len, slope, amp) in streaks {
                    let top = (y0 + 4.0 * t).rem_euclid(s);
                    for k in 0..len as usize {
                        let y = (top + k as f32).rem_euclid(s) as usize;
                        let x = (x0 + slope * k as f32).rem_euclid(s) as usize;
                        let v = &mut out[y.min(size - 1) * size + x.min(size - 1)];
                        *v = (*v + amp).min(1.0);
                    }
                }
            }
            Storm::Haze { beta, airlight } => {
                for (i, v) in out.iter_mut().enumerate() {
                    let depth = 1.0 - (i / size) as f32 / s;
                    let tr = (-beta * depth).exp();
                    *v = *v * tr + airlight * (1.0 - tr);
                }
            }
            Storm::Snow(flakes) => {
                for &(x0, y0, drift, amp) in flakes {
                    let y = (y0 + t).rem_euclid(s) as usize;
                    let x = (x0 + drift * t).rem_euclid(s) as usize;
                    let v = &mut out[y.min(size - 1) * size + x.min(size - 1)];
                    *v = v.max(amp);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_seeded_bounded_and_degraded_by_their_weather() {
        let a = weather_clips(9, 3, 16, 4).unwrap();
        assert_eq!(a, weather_clips(9, 3, 16, 4).unwrap());
        assert_ne!(a.clean, weather_clips(9, 3, 16, 5).unwrap().clean);
        assert!(
            a.clean
                .iter()
                .chain(&a.degraded)
                .all(|v| (0.0..=1.0).contains(v))
        );
        let per = a.clip_len();
        for i in 0..a.n {
            let (c, d) = (
                &a.clean[i * per..(i + 1) * per],
                &a.degraded[i * per..(i + 1) * per],
            );
            let changed = c
                .iter()
                .zip(d)
                .filter(|(c, d)| (*c - *d).abs() > 1e-6)
                .count();
            match a.weather[i] {
                // Haze changes nearly every pixel; rain and snow a sparse set.
                1 => assert!(changed > per * 9 / 10, "haze changed {changed} of {per}"),
                _ => assert!(
                    changed > 0 && changed < per / 3,
                    "sparse weather changed {changed}"
                ),
            }
        }
        // The scene moves: consecutive clean frames differ.
        let f = 16 * 16;
        assert_ne!(a.clean[..f], a.clean[f..2 * f]);
    }

    #[test]
    fn bad_arguments_name_the_value() {
        let e = weather_clips(0, 5, 16, 0).unwrap_err().to_string();
        assert!(e.contains("n = 0"), "{e}");
        assert!(
            weather_clips(3, 5, 4, 0)
                .unwrap_err()
                .to_string()
                .contains("side = 4")
        );
        assert!(
            weather_clips(3, 0, 16, 0)
                .unwrap_err()
                .to_string()
                .contains("frames = 0")
        );
    }
}
