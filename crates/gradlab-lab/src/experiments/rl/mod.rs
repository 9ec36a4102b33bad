//! Experiments of the reinforcement-learning papers.

register! {
    policy_gradient::PolicyGradient,
    odice::OdiceExperiment,
}
