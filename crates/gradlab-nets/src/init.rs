//! Seeded initialisation.
//!
//! burn's CPU backend draws initial weights from one process-wide generator, and parameters are
//! initialised lazily on first use. [`seeded`] seeds that generator, builds the module and forces
//! every parameter to initialise while holding a lock, so the same seed always yields the same
//! weights, even with tests running on several threads.

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;
use std::sync::Mutex;

static INIT_LOCK: Mutex<()> = Mutex::new(());

struct Touch;
impl ModuleVisitor for Touch {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let _ = p.val();
    }
}

/// Build a module with `build` so that its random initialisation depends only on `seed`.
///
/// ```
/// use burn::prelude::*;
/// use burn::nn::LinearConfig;
/// let dev = Device::flex();
/// let a = gradlab_nets::init::seeded(&dev, 3, || LinearConfig::new(4, 2).init(&dev));
/// let b = gradlab_nets::init::seeded(&dev, 3, || LinearConfig::new(4, 2).init(&dev));
/// assert_eq!(a.weight.val().into_data(), b.weight.val().into_data());
/// ```
pub fn seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    device.seed(seed);
    let module = build();
    module.visit(&mut Touch);
    module
}
