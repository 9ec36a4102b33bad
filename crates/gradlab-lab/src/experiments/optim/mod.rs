//! Experiments of the optimizer and schedule papers.

pub mod diff2_net;

register! {
    diffgrad::DiffGradExperiment,
    adam_vs_sgd::AdamVsSgd,
    lr_refinement::LrRefinement,
    tract::TrActExperiment,
    target_surrogates::TargetSurrogates,
    adadagrad::AdAdaGrad,
    diff2::Diff2,
}
