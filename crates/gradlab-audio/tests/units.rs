//! gradlab-audio's own tests, as one integration test: the crate is not compiled a second time as a
//! unit-test harness (`[lib] test = false`), which shortens the CI build.

mod metrics {

    use gradlab_audio::metrics::*;

    #[test]
    fn si_sdr_has_its_closed_form_for_orthogonal_noise() {
        // s and n orthogonal: ŝ = s + n gives α = 1, e = n, SI-SDR = 10 log(‖s‖²/‖n‖²).
        let s: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
        let n: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let dot: f64 = s
            .iter()
            .zip(&n)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let est: Vec<f32> = s.iter().zip(&n).map(|(a, b)| a + b).collect();
        let ss: f64 = s.iter().map(|v| (*v as f64).powi(2)).sum();
        let nn: f64 = n.iter().map(|v| (*v as f64).powi(2)).sum();
        // The two are nearly but not exactly orthogonal.
        assert!((dot / (ss * nn).sqrt()).abs() < 0.01);
        let got = si_sdr(&est, &s).unwrap();
        assert!((got - 10.0 * (ss / nn).log10()).abs() < 0.1, "{got}");
        assert!(si_sdr(&est, &s[..10]).is_err());
        assert!(si_sdr(&est, &vec![0.0; 1000]).is_err());
    }
}

mod mix {

    use gradlab_audio::mix::*;

    #[test]
    fn the_mixture_has_the_asked_snr() {
        let s: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.07).sin()).collect();
        let n = noise(NoiseKind::Brown, 5000, 3).unwrap();
        for snr in [-5.0, 0.0, 10.0] {
            let y = add_noise_at_snr(&s, &n, snr).unwrap();
            let d: Vec<f32> = y.iter().zip(&s).map(|(a, b)| a - b).collect();
            let got = 10.0 * (energy(&s) / energy(&d)).log10();
            assert!((got - snr).abs() < 1e-3, "{got} vs {snr}");
        }
        assert!(add_noise_at_snr(&s, &n[..10], 0.0).is_err());
        assert!(add_noise_at_snr(&s, &vec![0.0; 4000], 0.0).is_err());
    }

    #[test]
    fn convolution_matches_the_direct_sum_and_noises_have_their_slopes() {
        let x: Vec<f32> = (0..50).map(|i| ((i * 7) % 5) as f32 - 2.0).collect();
        let h = [1.0f32, 0.5, -0.25, 0.125];
        let got = convolve(&x, &h).unwrap();
        for i in 0..50 {
            let want: f32 = (0..4).filter(|k| *k <= i).map(|k| h[k] * x[i - k]).sum();
            assert!((got[i] - want).abs() < 1e-5);
        }
        // Pink and brown noise put more power at low frequencies than white: the lag-1
        // autocorrelation rises from ≈ 0 (white) to near 1 (brown).
        let lag1 =
            |v: &[f32]| v.windows(2).map(|w| (w[0] * w[1]) as f64).sum::<f64>() / v.len() as f64;
        let (w, p, b) = (
            lag1(&noise(NoiseKind::White, 20000, 1).unwrap()),
            lag1(&noise(NoiseKind::Pink, 20000, 1).unwrap()),
            lag1(&noise(NoiseKind::Brown, 20000, 1).unwrap()),
        );
        assert!(
            w.abs() < 0.03 && p > 0.3 && b > 0.95 && p < b,
            "{w} {p} {b}"
        );
        // The RIR's energy decays: the last fifth holds far less than the first.
        let h = room_impulse_response(8000, 0.5, 4).unwrap();
        let fifth = h.len() / 5;
        assert!(energy(&h[1..fifth]) > 100.0 * energy(&h[4 * fifth..]));
        assert!(room_impulse_response(8000, 10.0, 0).is_err());
        assert!(NoiseKind::parse("purple").is_err());
    }
}

mod speech {

    #[test]
    fn every_clip_is_8_khz_speech_of_the_stated_length() {
        let lengths = [3.0, 3.0, 1.5765, 2.0035, 2.5, 4.0];
        for (name, secs) in gradlab_audio::speech::CLIPS.iter().zip(lengths) {
            let a = gradlab_audio::speech::clip(name).unwrap();
            assert_eq!(a.rate, 8000);
            assert!(
                (a.samples.len() as f64 / 8000.0 - secs).abs() < 1e-3,
                "{name}"
            );
            let rms = (a.samples.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
                / a.samples.len() as f64)
                .sqrt();
            assert!(rms > 0.01, "{name} is nearly silent");
        }
    }
}

mod stft {

    use gradlab_audio::stft::*;

    /// The DFT of one frame by its definition, O(n²).
    fn dft(frame: &[f64]) -> Vec<(f64, f64)> {
        let n = frame.len();
        (0..n / 2 + 1)
            .map(|f| {
                frame
                    .iter()
                    .enumerate()
                    .fold((0.0, 0.0), |(re, im), (k, x)| {
                        let a = -2.0 * std::f64::consts::PI * (f * k) as f64 / n as f64;
                        (re + x * a.cos(), im + x * a.sin())
                    })
            })
            .collect()
    }

    #[test]
    fn frames_match_the_dft_of_the_reflect_padded_windowed_signal() {
        let stft = Stft::new(16, 4).unwrap();
        let x: Vec<f32> = (0..37)
            .map(|i| ((i * i) % 11) as f32 / 11.0 - 0.4)
            .collect();
        let spec = stft.forward(&x).unwrap();
        assert_eq!((spec.bins, spec.frames), (9, 10));
        // Frame 0 starts 8 samples before the signal: reflect gives x[8], x[7], …, x[1], x[0], ….
        let padded: Vec<f64> = (0..16)
            .map(|k: isize| x[(k - 8).unsigned_abs()] as f64)
            .collect();
        let win: Vec<f64> = (0..16)
            .map(|k| padded[k] * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / 16.0).cos()))
            .collect();
        for (f, (re, im)) in dft(&win).into_iter().enumerate() {
            assert!((spec.re[f * 10] - re).abs() < 1e-9 && (spec.im[f * 10] - im).abs() < 1e-9);
        }
        // Frame 3 covers x[4 .. 20].
        let win: Vec<f64> = (0..16)
            .map(|k| {
                x[4 + k] as f64 * (0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / 16.0).cos())
            })
            .collect();
        for (f, (re, im)) in dft(&win).into_iter().enumerate() {
            assert!(
                (spec.re[f * 10 + 3] - re).abs() < 1e-9 && (spec.im[f * 10 + 3] - im).abs() < 1e-9
            );
        }
    }

    #[test]
    fn the_inverse_restores_the_signal_and_compression_inverts() {
        let stft = Stft::new(510, 128).unwrap();
        let x: Vec<f32> = (0..3000)
            .map(|i| ((i as f32) * 0.05).sin() * 0.3 + ((i * 31) % 7) as f32 * 0.01)
            .collect();
        let spec = stft.forward(&x).unwrap();
        assert_eq!(spec.bins, 256);
        let c = compress(&spec, 0.5, 0.15).unwrap();
        // |c|^0.5 · 0.15 at a bin, phase kept.
        let (m, mc) = (spec.re[700].hypot(spec.im[700]), c.re[700].hypot(c.im[700]));
        assert!((mc - 0.15 * m.sqrt()).abs() < 1e-12);
        assert!((spec.re[700] * c.im[700] - spec.im[700] * c.re[700]).abs() < 1e-9);
        let back = stft
            .inverse(&expand(&c, 0.5, 0.15).unwrap(), x.len())
            .unwrap();
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(stft.forward(&x[..200]).is_err());
        assert!(Stft::new(15, 4).is_err() && Stft::new(16, 0).is_err());
        assert!(compress(&spec, 0.0, 0.15).is_err());
        assert!(stft.inverse(&Spectrogram::zeros(3, 4), 10).is_err());
    }
}

mod stoi {

    use gradlab_audio::stoi::*;

    /// Golden values from pystoi 0.4.1 (numpy 2.4.6, scipy 1.17.1), computed on this machine:
    /// `stoi(x, y, fs)` with x = data/speech/hts1a.wav (16-bit / 32768), i = 0 … 23,999,
    /// noise = ((7919 i) mod 13)/13 − 0.5, tone = sin(2π·1000·i/8000), at fs = 8000 (resampled)
    /// and fs = 10000 (the same samples taken as 10 kHz: no resampling).
    #[test]
    fn stoi_matches_pystoi() {
        let x = gradlab_audio::speech::clip("hts1a").unwrap().samples;
        let noise = |i: usize| ((i * 7919) % 13) as f32 / 13.0 - 0.5;
        let tone =
            |i: usize| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin() as f32;
        let y1: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.1 * noise(i))
            .collect();
        let y2: Vec<f32> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.02 * noise(i) + 0.05 * tone(i))
            .collect();
        for (y, at8, at10) in [
            (&y1, 0.9370596736487201, 0.9746099211812915),
            (&y2, 0.9565403123482322, 0.9751124521402302),
        ] {
            let (g8, g10) = (stoi(&x, y, 8000).unwrap(), stoi(&x, y, 10000).unwrap());
            assert!((g10 - at10).abs() < 1e-9, "10 kHz: {g10} vs {at10}");
            assert!((g8 - at8).abs() < 1e-7, "8 kHz: {g8} vs {at8}");
        }
        assert!(stoi(&x[..2000], &y1[..2000], 8000).is_err());
        assert!(stoi(&x, &y1[..100], 8000).is_err());
    }
}

mod wav {

    use std::path::Path;

    use gradlab_audio::wav::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("gradlab-wav-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_written_file_reads_back_within_16_bit_rounding() {
        let path = tmp("round.wav");
        let x: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.37).sin() * 0.9).collect();
        write_wav(
            &path,
            &Audio {
                rate: 16000,
                samples: x.clone(),
            },
        )
        .unwrap();
        let back = read_wav(&path).unwrap();
        assert_eq!(back.rate, 16000);
        assert_eq!(back.samples.len(), 1000);
        assert!(
            back.samples
                .iter()
                .zip(&x)
                .all(|(a, b)| (a - b).abs() <= 0.5 / 32768.0 + 1e-7)
        );
        assert!(!path.with_extension("wav.partial").exists());
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let missing = read_wav(Path::new("/nonexistent/x.wav"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("cannot open"), "{missing}");
        let junk = tmp("junk.wav");
        std::fs::write(&junk, b"this is not audio").unwrap();
        assert!(
            read_wav(&junk)
                .unwrap_err()
                .to_string()
                .contains("not a readable WAV")
        );
        // Stereo.
        let stereo = tmp("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&stereo, spec).unwrap();
        for _ in 0..20 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        assert!(
            read_wav(&stereo)
                .unwrap_err()
                .to_string()
                .contains("2 channels")
        );
        // Empty.
        let empty = tmp("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            ..spec
        };
        hound::WavWriter::create(&empty, spec)
            .unwrap()
            .finalize()
            .unwrap();
        assert!(
            read_wav(&empty)
                .unwrap_err()
                .to_string()
                .contains("no samples")
        );
        // Truncated: a valid header, the data cut short mid-sample.
        let good = tmp("good.wav");
        write_wav(
            &good,
            &Audio {
                rate: 8000,
                samples: vec![0.1; 100],
            },
        )
        .unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let cut = tmp("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 51]).unwrap();
        assert!(read_wav(&cut).is_err());
        // Writing refuses NaN and leaves nothing behind.
        let out = tmp("nan.wav");
        assert!(
            write_wav(
                &out,
                &Audio {
                    rate: 8000,
                    samples: vec![f32::NAN]
                }
            )
            .is_err()
        );
        assert!(!out.exists());
    }
}
