//! The one clock of the generator: `CLOCK_MONOTONIC` in nanoseconds, the
//! clock the timerfd deadlines are armed on (`TFD_TIMER_ABSTIME`), so an
//! intended send time, a timer and a measured latency are all on one scale.

/// Nanoseconds of `CLOCK_MONOTONIC` (since boot, not counting suspend).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given; the vDSO
    // makes it a few tens of ns.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_in_step_with_std() {
        let a = now_ns();
        let t = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = now_ns();
        let std_ns = t.elapsed().as_nanos() as u64;
        assert!(b > a);
        // std's Instant is CLOCK_MONOTONIC too: the two agree closely.
        assert!(
            (b - a).abs_diff(std_ns) < 2_000_000,
            "{} vs {std_ns}",
            b - a
        );
    }
}
