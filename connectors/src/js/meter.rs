//! The CPU-time limit: the thread CPU time a call's script has used, summed over the
//! stretches in which it runs (the "segments"; see the module docs), so that time spent
//! awaiting host HTTP calls does not count, and neither does time the thread spent waiting
//! for a core on a busy machine.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// No segment is running.
const IDLE: u64 = u64::MAX;

/// One call's CPU budget. The engine's interrupt handler asks [`Meter::over_budget`] every
/// few thousand bytecode instructions; the answer `true` stops the script with an error it
/// cannot catch.
#[derive(Debug)]
pub(crate) struct Meter {
    budget: Duration,
    /// CPU nanoseconds used by the segments that ended.
    spent: AtomicU64,
    /// The thread's CPU clock when the running segment began, or [`IDLE`].
    cpu_start: AtomicU64,
    /// Wall time of the running segment's start, in nanoseconds since `epoch`: CPU time
    /// never exceeds wall time, so a handler call within budget by the wall clock skips
    /// the (slower) CPU clock.
    wall_start: AtomicU64,
    epoch: Instant,
    tripped: AtomicBool,
}

impl Meter {
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            budget,
            spent: AtomicU64::new(0),
            cpu_start: AtomicU64::new(IDLE),
            wall_start: AtomicU64::new(0),
            epoch: Instant::now(),
            tripped: AtomicBool::new(false),
        }
    }

    /// A segment begins on the current thread.
    pub(crate) fn begin(&self) {
        self.wall_start.store(self.wall_now(), Ordering::Relaxed);
        self.cpu_start.store(thread_cpu_nanos(), Ordering::Relaxed);
    }

    /// The segment that began on the current thread ends; the CPU time it used.
    pub(crate) fn end(&self) -> Duration {
        let start = self.cpu_start.swap(IDLE, Ordering::Relaxed);
        if start == IDLE {
            return Duration::ZERO;
        }
        let used = thread_cpu_nanos().saturating_sub(start);
        self.spent.fetch_add(used, Ordering::Relaxed);
        Duration::from_nanos(used)
    }

    /// Whether the script has used up its budget; once it has, always `true`.
    pub(crate) fn over_budget(&self) -> bool {
        if self.tripped() {
            return true;
        }
        let start = self.cpu_start.load(Ordering::Relaxed);
        if start == IDLE {
            return false;
        }
        let budget = self.budget.as_nanos().min(u128::from(u64::MAX)) as u64;
        let spent = self.spent.load(Ordering::Relaxed);
        let wall = self
            .wall_now()
            .saturating_sub(self.wall_start.load(Ordering::Relaxed));
        if spent.saturating_add(wall) <= budget {
            return false;
        }
        let cpu = thread_cpu_nanos().saturating_sub(start);
        let over = spent.saturating_add(cpu) > budget;
        if over {
            self.tripped.store(true, Ordering::Relaxed);
        }
        over
    }

    /// Whether the script was stopped for running past its budget.
    pub(crate) fn tripped(&self) -> bool {
        self.tripped.load(Ordering::Relaxed)
    }

    /// CPU time used so far by the segments that ended.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn spent(&self) -> Duration {
        Duration::from_nanos(self.spent.load(Ordering::Relaxed))
    }

    fn wall_now(&self) -> u64 {
        self.epoch.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64
    }
}

/// The calling thread's CPU time, in nanoseconds.
#[cfg(unix)]
fn thread_cpu_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Without a thread CPU clock, wall time within segments: a busy machine may then stop a
/// script early, never late.
#[cfg(not(unix))]
fn thread_cpu_nanos() -> u64 {
    use std::sync::LazyLock;
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    EPOCH.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until {
            std::hint::black_box(0);
        }
    }

    #[test]
    fn counts_segments_only() {
        let meter = Meter::new(Duration::from_millis(30));
        meter.begin();
        spin(Duration::from_millis(5));
        meter.end();
        // Time outside a segment (awaiting HTTP) is not spent.
        std::thread::sleep(Duration::from_millis(40));
        assert!(!meter.over_budget());
        assert!(
            meter.spent() >= Duration::from_millis(4),
            "{:?}",
            meter.spent()
        );
        assert!(
            meter.spent() < Duration::from_millis(30),
            "{:?}",
            meter.spent()
        );
    }

    #[test]
    fn trips_and_stays_tripped() {
        let meter = Meter::new(Duration::from_millis(10));
        meter.begin();
        spin(Duration::from_millis(20));
        assert!(meter.over_budget());
        meter.end();
        assert!(meter.tripped());
        assert!(meter.over_budget());
    }
}
