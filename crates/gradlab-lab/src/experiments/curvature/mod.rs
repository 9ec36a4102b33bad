//! Experiments of the curvature and training-dynamics papers.

register! {
    grad_norm_smoothness::GradNormSmoothness,
    optimizers_alter_solutions::OptimizersAlterSolutions,
    coherent_gradients::CoherentGradients,
    hessian_spectrum::HessianSpectrum,
    mfac::Mfac,
    opposing_signals::OpposingSignals,
}
