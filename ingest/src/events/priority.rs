//! Event priorities (DESIGN §3, issue 21 §2): an event may carry
//! `"priority": "high" | "normal" | "low"`. Priorities matter only at the
//! journal budget, where the store is behind and the collector must refuse
//! something: `low` is refused first (from `--low-priority-budget-percent`
//! of a core's budget), `normal` next (at the budget minus
//! `--high-priority-reserve-percent`), and `high` may use that reserve, up
//! to the whole budget. Below the first threshold nothing changes.
//!
//! Any other `priority` value (another string, a number, `"HIGH"`) is kept
//! as data and the event counts as `normal`: the member is the app's, and a
//! typo must not lose an event that would otherwise be accepted.

/// The member an event names its priority with.
pub const FIELD_PRIORITY: &str = "priority";

/// Default of `--low-priority-budget-percent`: low-priority events are
/// refused once a core's journal holds this share of its budget.
pub const DEFAULT_LOW_PRIORITY_BUDGET_PERCENT: u32 = 80;
/// Default of `--high-priority-reserve-percent`: the share of the budget
/// only high-priority events may fill.
pub const DEFAULT_HIGH_PRIORITY_RESERVE_PERCENT: u32 = 10;
/// The largest reserve: 100 would refuse every normal event at all times.
pub const MAX_HIGH_PRIORITY_RESERVE_PERCENT: u32 = 99;

/// How urgent an event is at the journal budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Refused first.
    Low,
    /// The default, and what any unknown value counts as.
    #[default]
    Normal,
    /// May fill the reserve.
    High,
}

impl Priority {
    /// Every priority, most urgent first (the order of `/metrics` lines).
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    /// The priority a `priority` string names, `Normal` for anything else
    /// (exact lower-case names only, as the client libraries write them).
    pub fn from_value(text: &str) -> Priority {
        match text {
            "high" => Priority::High,
            "low" => Priority::Low,
            _ => Priority::Normal,
        }
    }

    /// The name written in events and in `/metrics` labels.
    pub fn name(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }

    /// Position in [`Priority::ALL`] (for per-priority counters).
    pub fn index(self) -> usize {
        match self {
            Priority::High => 0,
            Priority::Normal => 1,
            Priority::Low => 2,
        }
    }
}

/// The journal fill (unflushed bytes of one core's journal) at which each
/// priority is refused. Built from the per-core budget and the two percent
/// knobs; `low ≤ normal ≤ high = budget` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityBudget {
    low_limit_bytes: u64,
    normal_limit_bytes: u64,
    high_limit_bytes: u64,
}

impl PriorityBudget {
    /// Thresholds for a core whose budget is `budget_bytes`. The percents
    /// are clamped to what `Config::validate` allows (`low_percent` to at
    /// most `100 - reserve_percent`, the reserve to
    /// [`MAX_HIGH_PRIORITY_RESERVE_PERCENT`]), so the order above holds
    /// even for unchecked input. Every threshold is at least 1 byte: an
    /// empty journal takes any event, as a 1-byte budget does today.
    pub fn new(budget_bytes: u64, low_percent: u32, reserve_percent: u32) -> PriorityBudget {
        let reserve_percent = reserve_percent.min(MAX_HIGH_PRIORITY_RESERVE_PERCENT);
        let normal_percent = 100 - reserve_percent;
        let low_percent = low_percent.min(normal_percent);
        let high_limit_bytes = budget_bytes.max(1);
        PriorityBudget {
            low_limit_bytes: percent_of(high_limit_bytes, low_percent),
            normal_limit_bytes: percent_of(high_limit_bytes, normal_percent),
            high_limit_bytes,
        }
    }

    /// The journal fill at which `priority` is refused.
    pub fn limit_bytes(&self, priority: Priority) -> u64 {
        match priority {
            Priority::Low => self.low_limit_bytes,
            Priority::Normal => self.normal_limit_bytes,
            Priority::High => self.high_limit_bytes,
        }
    }

    /// Whether an event of `priority` is refused with the journal holding
    /// `unflushed_bytes`. A request is judged before it is appended, as
    /// the whole budget always was: one request may pass a threshold by
    /// its own size, never by more.
    pub fn refuses(&self, priority: Priority, unflushed_bytes: u64) -> bool {
        unflushed_bytes >= self.limit_bytes(priority)
    }

    /// Whether any priority is refused (the one check on the hot path:
    /// below the low threshold every event goes through untouched).
    pub fn refuses_any(&self, unflushed_bytes: u64) -> bool {
        self.refuses(Priority::Low, unflushed_bytes)
    }
}

/// `percent`% of `bytes`, rounded down, at least 1; `percent ≤ 100`, so it
/// never exceeds `bytes`. Computed in u128: `bytes * percent` overflows
/// u64 for budgets above 184 PB.
fn percent_of(bytes: u64, percent: u32) -> u64 {
    let part = u128::from(bytes) * u128::from(percent.min(100)) / 100;
    u64::try_from(part).unwrap_or(bytes).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_three_lower_case_names_are_priorities() {
        assert_eq!(Priority::from_value("high"), Priority::High);
        assert_eq!(Priority::from_value("low"), Priority::Low);
        assert_eq!(Priority::from_value("normal"), Priority::Normal);
        for other in ["HIGH", "urgent", "", " low", "high "] {
            assert_eq!(Priority::from_value(other), Priority::Normal, "{other:?}");
        }
        for p in Priority::ALL {
            assert_eq!(Priority::from_value(p.name()), p);
            assert_eq!(Priority::ALL[p.index()], p);
        }
    }

    #[test]
    fn defaults_refuse_low_at_80_percent_normal_at_90_and_high_at_the_budget() {
        let b = PriorityBudget::new(
            1000,
            DEFAULT_LOW_PRIORITY_BUDGET_PERCENT,
            DEFAULT_HIGH_PRIORITY_RESERVE_PERCENT,
        );
        assert_eq!(b.limit_bytes(Priority::Low), 800);
        assert_eq!(b.limit_bytes(Priority::Normal), 900);
        assert_eq!(b.limit_bytes(Priority::High), 1000);
        assert!(!b.refuses_any(799));
        assert!(b.refuses(Priority::Low, 800));
        assert!(!b.refuses(Priority::Normal, 899));
        assert!(b.refuses(Priority::Normal, 900));
        assert!(!b.refuses(Priority::High, 999));
        assert!(b.refuses(Priority::High, 1000));
        assert!(b.refuses_any(1000));
    }

    #[test]
    fn huge_budgets_do_not_overflow() {
        let b = PriorityBudget::new(u64::MAX, 80, 10);
        assert_eq!(b.limit_bytes(Priority::High), u64::MAX);
        assert_eq!(
            b.limit_bytes(Priority::Normal),
            (u128::from(u64::MAX) * 90 / 100) as u64
        );
        assert_eq!(
            b.limit_bytes(Priority::Low),
            (u128::from(u64::MAX) * 80 / 100) as u64
        );
        assert!(!b.refuses(Priority::High, u64::MAX - 1));
        assert!(b.refuses(Priority::High, u64::MAX));
    }

    #[test]
    fn thresholds_stay_ordered_and_positive_for_any_input() {
        for budget in [0u64, 1, 2, 9, 10, 99, 4096, u64::MAX] {
            for low in [0u32, 1, 50, 80, 90, 100, 101, u32::MAX] {
                for reserve in [0u32, 1, 10, 50, 99, 100, u32::MAX] {
                    let b = PriorityBudget::new(budget, low, reserve);
                    let (l, n, h) = (
                        b.limit_bytes(Priority::Low),
                        b.limit_bytes(Priority::Normal),
                        b.limit_bytes(Priority::High),
                    );
                    assert!(1 <= l && l <= n && n <= h, "{budget} {low} {reserve}");
                    assert_eq!(h, budget.max(1));
                    // An empty journal takes every priority.
                    assert!(!b.refuses_any(0), "{budget} {low} {reserve}");
                }
            }
        }
    }

    #[test]
    fn no_reserve_and_low_at_100_percent_is_the_old_single_threshold() {
        let b = PriorityBudget::new(1000, 100, 0);
        for p in Priority::ALL {
            assert_eq!(b.limit_bytes(p), 1000);
        }
    }
}
