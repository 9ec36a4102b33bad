//! Heap use, measured: [`MeteredAlloc`] wraps the system allocator and keeps the bytes in use
//! and their high-water mark, so an experiment can report the peak memory of one phase
//! ([`Peak::start`] … [`Peak::bytes`]) instead of computing it from a formula. It counts only when
//! it is the program's global allocator (`gradlab-lab` installs it, so the `gradlab` binary and
//! the lab's tests have it); [`Peak::start`] says whether it is. The counters are process-wide:
//! work on other threads during the phase (parallel tests) counts too.
//!
//! ```
//! use gradlab_core::memory::Peak;
//! // In a program without the metered allocator, a measurement says it cannot be made.
//! if let Some(p) = Peak::start() {
//!     let v = vec![0u8; 1 << 20];
//!     assert!(p.bytes() >= 1 << 20);
//!     drop(v);
//! }
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator with a count of the bytes in use and their peak.
pub struct MeteredAlloc;

fn added(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` with the same arguments; the counters only observe.
unsafe impl GlobalAlloc for MeteredAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            added(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
            added(new_size);
        }
        p
    }
}

/// A measurement of peak heap use from its start.
#[derive(Debug, Clone, Copy)]
pub struct Peak {
    base: usize,
}

impl Peak {
    /// Start measuring: the high-water mark is reset to the bytes in use now. `None` unless
    /// [`MeteredAlloc`] is the global allocator.
    pub fn start() -> Option<Self> {
        let before = CURRENT.load(Ordering::Relaxed);
        let probe = std::hint::black_box(vec![0u8; 64]);
        let active = CURRENT.load(Ordering::Relaxed) != before;
        drop(probe);
        if !active {
            return None;
        }
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        Some(Self { base })
    }

    /// The peak bytes in use above the start's, so far.
    pub fn bytes(&self) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}
