//! `gradlab saliency`: draw a saliency heat map over a user's image with a trained saliency CNN
//! (saved by `gradlab run normgrad` in its output's `model/` folder).
//!
//! The image must be a grayscale PNG of the model's size (24×24 for the experiment's model); an
//! RGB or other image, another size, a missing or corrupt file is a clear error before any work.
//! The heat map (the image in gray under the saliency in colour, upscaled) is written beside the
//! target and renamed; an existing output is replaced only with `--force`.

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use gradlab_paradigms::normgrad::{
    Phase1, Probe, combine, load_model, meta_saliency, normalise, upsample,
};
use gradlab_train::output::{check_output_file, write_atomic};
use std::path::PathBuf;

/// The saliency methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// NormGrad of every block, upsampled, normalised and multiplied (the paper's combination).
    Combined,
    /// NormGrad (‖x‖·‖g‖) of one block.
    Normgrad,
    /// The 3×3 virtual layer of one block.
    Conv3x3,
    /// TorchRay's selective variant ‖max(x ⊙ g, 0)‖ of one block.
    Selective,
    /// Grad-CAM of one block.
    GradCam,
    /// The plain input gradient max_c |∂score/∂x|.
    Gradient,
}

/// The arguments of `gradlab saliency`.
#[derive(clap::Args)]
pub struct Args {
    /// The model folder (`model/` in the output of `gradlab run normgrad`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The grayscale PNG image, of the model's size.
    #[arg(long, value_name = "PNG")]
    pub image: PathBuf,
    /// Where to write the heat map (PNG).
    #[arg(long, value_name = "PNG")]
    pub out: PathBuf,
    /// The class to explain, by name or index (default: the predicted class).
    #[arg(long)]
    pub class: Option<String>,
    /// The saliency method.
    #[arg(long, value_enum, default_value_t = Method::Combined)]
    pub method: Method,
    /// The block (1 = first) for the per-block methods (default: the last).
    #[arg(long)]
    pub layer: Option<usize>,
    /// Meta-saliency: one SGD step of this size on the class's cross-entropy first (official 1e-4).
    #[arg(long, value_name = "LR")]
    pub meta_lr: Option<f64>,
    /// Screen pixels per image pixel in the output (1 to 64).
    #[arg(long, default_value_t = 16)]
    pub scale: u32,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Read a grayscale PNG as values in [0, 1] with its size.
fn read_gray(path: &std::path::Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read the image", path.display()))?;
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .map_err(|e| anyhow::anyhow!("{}: not a readable PNG image ({e})", path.display()))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let values: Vec<f32> = match img {
        image::DynamicImage::ImageLuma8(g) => g
            .into_raw()
            .into_iter()
            .map(|v| f32::from(v) / 255.0)
            .collect(),
        image::DynamicImage::ImageLuma16(g) => g
            .into_raw()
            .into_iter()
            .map(|v| f32::from(v) / 65535.0)
            .collect(),
        other => bail!(
            "{}: the image has {} channels ({:?}); the model takes 1-channel grayscale images (convert first, e.g. `convert in.png -colorspace Gray -alpha off gray.png`)",
            path.display(),
            other.color().channel_count(),
            other.color()
        ),
    };
    Ok((values, h, w))
}

/// A perceptually ordered colour for v ∈ [0, 1] (dark blue → red → yellow).
fn heat(v: f64) -> [f64; 3] {
    let v = v.clamp(0.0, 1.0);
    [
        (1.5 * v).min(1.0),
        (2.0 * v - 1.0).clamp(0.0, 1.0),
        (0.6 - 1.2 * v).abs().min(0.6),
    ]
}

/// Check everything, compute the map, write it.
pub fn run(args: Args) -> Result<()> {
    check_output_file(&args.out, &["png"])?;
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    if !(1..=64).contains(&args.scale) {
        bail!("--scale must lie in 1..=64, got {}", args.scale);
    }
    if let Some(lr) = args.meta_lr
        && !(lr > 0.0 && lr <= 100.0)
    {
        bail!("--meta-lr must lie in (0, 100], got {lr}");
    }
    let (net, card) = load_model(&args.model)?;
    let (pixels, h, w) = read_gray(&args.image)?;
    let [c, mh, mw] = net.input_shape();
    if (c, h, w) != (1, mh, mw) {
        bail!(
            "{}: the image is {w}×{h} pixels; the model takes {mw}×{mh} (width × height)",
            args.image.display()
        );
    }
    let layers = net.layers();
    let layer = match args.layer {
        None => layers - 1,
        Some(l) if (1..=layers).contains(&l) => l - 1,
        Some(l) => {
            bail!("--layer must lie in 1..={layers} (the model has {layers} blocks), got {l}")
        }
    };
    if args.layer.is_some() && matches!(args.method, Method::Combined | Method::Gradient) {
        bail!(
            "--layer applies to the per-block methods, not to --method {:?}",
            args.method
        );
    }
    let dev = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(pixels.clone(), [1, 1, h, w]), &dev);
    let logits = gradlab_core::bridge::to_host(net.forward(x.clone())?)?;
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = logits.iter().map(|v| (v - max).exp()).sum();
    let probs: Vec<f64> = logits.iter().map(|v| (v - max).exp() / z).collect();
    let predicted = probs
        .iter()
        .enumerate()
        .fold(0, |b, (i, p)| if *p > probs[b] { i } else { b });
    let class = match &args.class {
        None => predicted,
        Some(s) => match (
            card.class_names.iter().position(|n| n == s),
            s.parse::<usize>(),
        ) {
            (Some(i), _) => i,
            (None, Ok(i)) if i < card.class_names.len() => i,
            _ => bail!(
                "--class {s}: not one of the model's classes ({}; or an index 0..{})",
                card.class_names.join(", "),
                card.class_names.len()
            ),
        },
    };
    let probe: Probe = match args.meta_lr {
        Some(lr) => meta_saliency(&net, x, &[class], lr)?,
        None => net.probe(x, &[class])?,
    };
    let map = match args.method {
        Method::Combined => combine(
            (0..layers)
                .map(|u| probe.normgrad(u, Phase1::Conv1x1))
                .collect::<Result<Vec<_>, _>>()?,
            [h, w],
        )?,
        Method::Normgrad => probe.normgrad(layer, Phase1::Conv1x1)?,
        Method::Conv3x3 => probe.normgrad(layer, Phase1::Conv3x3)?,
        Method::Selective => probe.normgrad(layer, Phase1::Selective)?,
        Method::GradCam => probe.grad_cam(layer)?,
        Method::Gradient => probe.gradient(),
    };
    let map = gradlab_core::bridge::to_host(normalise(upsample(map, [h, w])))?;
    let s = args.scale as usize;
    let mut rgb = image::RgbImage::new((w * s) as u32, (h * s) as u32);
    for (k, px) in rgb.pixels_mut().enumerate() {
        let (r, q) = ((k / (w * s)) / s, (k % (w * s)) / s);
        let (gray, v) = (f64::from(pixels[r * w + q]), map[r * w + q]);
        let col = heat(v);
        let mix = |i: usize| {
            ((0.45 * gray + 0.55 * col[i]) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        *px = image::Rgb([mix(0), mix(1), mix(2)]);
    }
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| anyhow::anyhow!("{}: cannot encode the heat map ({e})", args.out.display()))?;
    write_atomic(&args.out, &png)?;
    outln!(
        "{}: predicted {} ({:.1}%); {:?} saliency for class {}{} → {}",
        args.image.display(),
        card.class_names[predicted],
        100.0 * probs[predicted],
        args.method,
        card.class_names[class],
        args.meta_lr
            .map_or(String::new(), |lr| format!(" with meta-saliency (lr {lr})")),
        args.out.display()
    );
    Ok(())
}
