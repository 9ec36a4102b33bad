//! Experiments of the score, flow and diffusion papers.

pub(crate) mod degraded_digits;
mod score_sde_images;

register! {
    rectified_flow::RectifiedFlow,
    painters::Painters,
    score_sde::ScoreSde,
    rectified_diffusion::RectifiedDiffusion,
    mrs::MrsExperiment,
    resfusion::Resfusion,
    flowchef::FlowChefExperiment,
    concept_unlearning::ConceptUnlearning,
    alignprop::AlignProp,
    fdistill::Fdistill,
    sgmse::SgmseExperiment,
}
