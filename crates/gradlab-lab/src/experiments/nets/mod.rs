//! Experiments of the network and estimator papers.

register! {
    reste::ReSte,
    noprop::NoPropExperiment,
    gbnn::GbnnExperiment,
    normgrad::NormGradExperiment,
    groco::GroCoExperiment,
    revcol::RevColExperiment,
    viws_net::ViwsNetExperiment,
    yolov9_pgi::YoloV9Pgi,
}
