//! Experiments of the network and estimator papers.

register! {
    reste::ReSte,
}
