//! The memory cap: the allocator every engine runtime is built with.
//!
//! QuickJS has a memory limit of its own, but when it refuses an allocation it may have no
//! memory left to build the "out of memory" error, and throws `null` instead: a script's
//! own `throw null` would look the same. This allocator enforces the cap itself and records
//! that it refused something, so that a failed call is classified by what happened, not by
//! what was thrown.
//!
//! It is the one place of this module that implements an `unsafe` trait: rquickjs's
//! [`Allocator`] is `unsafe` because QuickJS trusts the pointers it returns. Every method
//! delegates to rquickjs's own [`RustAllocator`], and only adds a refusal (a null pointer,
//! which the contract allows) and a count of the sizes that same allocator reports.
#![allow(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rquickjs::allocator::{Allocator, RustAllocator};

/// `RustAllocator` keeps the size in a header of this many bytes before each block.
const HEADER: usize = 8;

/// How much one runtime may hold, and whether it asked for more. Shared between the runtime's
/// allocator and the session that uses the runtime.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    limit: AtomicUsize,
    exceeded: AtomicBool,
}

impl Budget {
    /// Starts a call: at most `limit` bytes, no refusal yet.
    pub(crate) fn reset(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
        self.exceeded.store(false, Ordering::Relaxed);
    }

    /// Lets the host read a failed script's error past the cap: the script no longer runs
    /// unobserved (its CPU meter still stops it), and the error's text must be readable.
    pub(crate) fn widen(&self, extra: usize) {
        self.limit.fetch_add(extra, Ordering::Relaxed);
    }

    /// Whether an allocation was refused since the last [`reset`](Self::reset).
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

/// Counts what the runtime holds and refuses what would go over its [`Budget`].
pub(crate) struct CappedAllocator {
    budget: Arc<Budget>,
    /// Bytes held, headers included. Only this allocator touches it.
    used: usize,
}

impl CappedAllocator {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Self { budget, used: 0 }
    }

    /// Whether `more` bytes fit; records the refusal if not.
    fn admit(&self, more: usize) -> bool {
        let limit = self.budget.limit.load(Ordering::Relaxed);
        let fits = self.used.saturating_add(more) <= limit;
        if !fits {
            self.budget.exceeded.store(true, Ordering::Relaxed);
        }
        fits
    }

    fn held(ptr: *mut u8) -> usize {
        // SAFETY: only called with non-null pointers that `RustAllocator` returned to this
        // allocator and that were not freed since.
        unsafe { RustAllocator::usable_size(ptr) + HEADER }
    }
}

/// The size `RustAllocator` rounds a request to, header included.
fn footprint(size: usize) -> usize {
    size.div_ceil(8).saturating_mul(8).saturating_add(HEADER)
}

// SAFETY: each method returns either null or what `RustAllocator` (which satisfies this
// trait) returned for the same arguments, and passes back to it only pointers it returned.
unsafe impl Allocator for CappedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(footprint(size)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.alloc(size);
        if !ptr.is_null() {
            self.used += Self::held(ptr);
        }
        ptr
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        // `RustAllocator::calloc` panics on overflow, and a panic must not cross into C.
        let Some(total) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        if !self.admit(footprint(total)) {
            return std::ptr::null_mut();
        }
        let ptr = RustAllocator.calloc(count, size);
        if !ptr.is_null() {
            self.used += Self::held(ptr);
        }
        ptr
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        self.used -= Self::held(ptr);
        // SAFETY: the caller passes a live pointer from this allocator (the trait's contract).
        unsafe { RustAllocator.dealloc(ptr) }
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // QuickJS never asks for these, but `RustAllocator::realloc` would not survive them.
        if ptr.is_null() {
            return self.alloc(new_size);
        }
        if new_size == 0 {
            // SAFETY: as in `dealloc`.
            unsafe { self.dealloc(ptr) };
            return std::ptr::null_mut();
        }
        let old = Self::held(ptr);
        let new = footprint(new_size);
        if new > old && !self.admit(new - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller passes a live pointer from this allocator (the trait's contract).
        let moved = unsafe { RustAllocator.realloc(ptr, new_size) };
        if !moved.is_null() {
            self.used = self.used - old + Self::held(moved);
        }
        moved
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: the caller passes a live pointer from this allocator (the trait's contract).
        unsafe { RustAllocator::usable_size(ptr) }
    }
}
