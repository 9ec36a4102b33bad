//! Experiments of the distributed-gradient papers.

register! {
    gradient_coding::GradientCoding,
}
