//! The seed papers and the registry of experiments.

use crate::experiment::Experiment;

/// One of the thirty-six seed papers.
#[derive(Debug, Clone, Copy)]
pub struct SeedPaper {
    /// Title.
    pub title: &'static str,
    /// Family (the crate that holds or will hold it).
    pub family: &'static str,
    /// Experiment id.
    pub experiment: &'static str,
}

macro_rules! papers {
    ($( $title:expr, $family:expr, $id:expr; )*) => { &[ $( SeedPaper { title: $title, family: $family, experiment: $id } ),* ] };
}

/// The seed papers, in the order of the seed list.
pub const SEED_PAPERS: &[SeedPaper] = papers![
    "Video Adverse-Weather-Component Suppression Network via Weather Messenger and Adversarial Backpropagation (ViWS-Net)", "nets", "viws-net";
    "diffGrad: An Optimization Method for Convolutional Neural Networks", "optim", "diffgrad";
    "Gradient-Normalized Smoothness for Optimization with Approximate Hessians", "curvature", "grad-norm-smoothness";
    "ODICE: Revealing the Mystery of Distribution Correction Estimation via Orthogonal-gradient Update", "rl", "odice";
    "TrAct: Making First-layer Pre-Activations Trainable", "optim", "tract";
    "Score-Based Generative Modeling through Stochastic Differential Equations", "generative", "score-sde";
    "Optimizers Qualitatively Alter Solutions And We Should Leverage This", "curvature", "optimizers-alter-solutions";
    "A Deep Conjugate Direction Method for Iteratively Solving Linear Systems (DCDM)", "solvers", "dcdm";
    "Diffusion Models Generate Images Like Painters: an Analytical Theory of Outline First, Details Later", "generative", "painters";
    "MRS: A Fast Sampler for Mean Reverting Diffusion based on ODE and SDE Solvers", "generative", "mrs";
    "One-step Diffusion Models with f-Divergence Distribution Matching", "generative", "f-distill";
    "There and Back Again: Revisiting Backpropagation Saliency Methods (NormGrad)", "nets", "normgrad";
    "NoProp: Training Neural Networks without Back-propagation or Forward-propagation", "nets", "noprop";
    "Outliers with Opposing Signals Have an Outsized Effect on Neural Network Optimization", "curvature", "opposing-signals";
    "Reversible Column Networks (RevCol)", "nets", "revcol";
    "Rectified Diffusion: Straightness Is Not Your Need in Rectified Flow", "generative", "rectified-diffusion";
    "Steering Rectified Flow Models in the Vector Field for Controlled Image Generation (FlowChef)", "generative", "flowchef";
    "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information", "curvature", "mfac";
    "DIFF2: Differential Private Optimization via Gradient Differences for Nonconvex Distributed Learning", "optim", "diff2";
    "When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement", "optim", "lr-refinement";
    "Speech Enhancement and Dereverberation with Diffusion-based Generative Models (SGMSE+)", "generative", "sgmse";
    "Target-based Surrogates for Stochastic Optimization", "optim", "target-surrogates";
    "Sequential Gradient Coding For Straggler Mitigation", "distributed", "gradient-coding";
    "Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary Neural Networks Training (ReSTE)", "nets", "reste";
    "Empirical Analysis of the Hessian of Over-Parametrized Neural Networks", "curvature", "hessian-spectrum";
    "Resfusion: Denoising Diffusion Probabilistic Models for Image Restoration Based on Prior Residual Noise", "generative", "resfusion";
    "Unlearning Concepts in Diffusion Model via Concept Domain Correction and Concept Preserving Gradient (DoCo)", "generative", "concept-unlearning";
    "Sequential Training of Neural Networks with Gradient Boosting (GBNN)", "nets", "gbnn";
    "YOLOv9: Learning What You Want to Learn Using Programmable Gradient Information (PGI, GELAN)", "nets", "yolov9-pgi";
    "AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods", "optim", "adadagrad";
    "On the Generalization Mystery in Deep Learning", "curvature", "coherent-gradients";
    "Learning by Sorting: Self-supervised Learning with Group Ordering Constraints (GroCo)", "nets", "groco";
    "Toward Understanding Why Adam Converges Faster Than SGD for Transformers", "optim", "adam-vs-sgd";
    "Stochastic Policy Gradient Methods: Improved Sample Complexity for Fisher-non-degenerate Policies", "rl", "policy-gradient";
    "Aligning Text-to-Image Diffusion Models with Reward Backpropagation (AlignProp)", "generative", "alignprop";
    "Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow", "generative", "rectified-flow";
];

/// Every implemented experiment: each family's registered list ([`crate::experiments`]), in the
/// order optimizers, networks, curvature, generative models, reinforcement learning, distributed gradients, linear solvers.
pub fn experiments() -> Vec<Box<dyn Experiment>> {
    use crate::experiments::{curvature, distributed, generative, nets, optim, rl, solvers};
    [
        optim::experiments(),
        nets::experiments(),
        curvature::experiments(),
        generative::experiments(),
        rl::experiments(),
        distributed::experiments(),
        solvers::experiments(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The title of the seed paper whose experiment is `id` ("" if none is).
pub fn title(id: &str) -> &'static str {
    SEED_PAPERS
        .iter()
        .find(|p| p.experiment == id)
        .map_or("", |p| p.title)
}

/// Ids of the implemented experiments.
pub fn experiment_ids() -> Vec<&'static str> {
    experiments().iter().map(|e| e.info().id).collect()
}

/// The experiment with `id`.
pub fn find(id: &str) -> Option<Box<dyn Experiment>> {
    experiments().into_iter().find(|e| e.info().id == id)
}
