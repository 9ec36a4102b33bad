//! Experiments of the learned-solver papers.

register! {
    dcdm::DcdmExperiment,
}
