//! `PRI`: facility and severity, their names, and the Helios priority a
//! severity maps to.

/// Largest PRI value: facility 23 (local7) × 8 + severity 7 (debug).
pub const MAX_PRI: u8 = 191;

/// Most digits of a PRI value (`<191>`).
const MAX_PRI_DIGITS: usize = 3;

/// Facility names by code, as RFC 5424's table (§6.2.1) numbers them.
/// 13..15 have no agreed keyword; these are the names syslog-ng and most
/// parsers print (RFC 5424: "log audit", "log alert", "clock daemon").
const FACILITY_NAMES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity keywords by code (RFC 5424 §6.2.1, `syslog.h`'s names).
const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// A message's facility and severity (its `PRI` is `facility * 8 +
/// severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pri {
    /// 0..=23.
    facility: u8,
    /// 0..=7.
    severity: u8,
}

/// The PRI RFC 3164 §4.3.3 tells a relay to assume for a message that
/// has none: user.notice.
pub const DEFAULT_PRI: Pri = Pri {
    facility: 1,
    severity: 5,
};

impl Pri {
    /// From a PRI value, `None` above [`MAX_PRI`].
    pub fn from_value(value: u8) -> Option<Pri> {
        (value <= MAX_PRI).then_some(Pri {
            facility: value / 8,
            severity: value % 8,
        })
    }

    /// Facility code, 0..=23.
    pub fn facility_code(self) -> u8 {
        self.facility
    }

    /// Severity code, 0 (emerg) ..= 7 (debug).
    pub fn severity_code(self) -> u8 {
        self.severity
    }

    /// Facility name (`kern`, `user`, …, `local7`).
    pub fn facility(self) -> &'static str {
        FACILITY_NAMES[usize::from(self.facility)]
    }

    /// Severity name (`emerg` … `debug`).
    pub fn severity(self) -> &'static str {
        SEVERITY_NAMES[usize::from(self.severity)]
    }

    /// The Helios priority of the severity: emerg, alert, crit and err
    /// are `high` (a failing system must still be heard when the journal
    /// is nearly full), warning, notice and info `normal`, debug `low`
    /// (the first to be refused under pressure).
    pub fn priority(self) -> &'static str {
        match self.severity {
            0..=3 => "high",
            4..=6 => "normal",
            _ => "low",
        }
    }
}

/// `<PRI>` at the start of `bytes`: the PRI and the rest after `>`, or
/// `None` when there is no well-formed PRI (1 to 3 digits, at most
/// [`MAX_PRI`]). Leading zeros are taken (`<013>`), as rsyslog does.
pub fn split_pri(bytes: &[u8]) -> Option<(Pri, &[u8])> {
    let rest = bytes.strip_prefix(b"<")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_PRI_DIGITS || rest.get(digits) != Some(&b'>') {
        return None;
    }
    let value = rest[..digits]
        .iter()
        .fold(0_u16, |acc, &b| acc * 10 + u16::from(b - b'0'));
    let pri = Pri::from_value(u8::try_from(value).ok()?)?;
    Some((pri, &rest[digits + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pri_splits_into_facility_and_severity() {
        let (pri, rest) = split_pri(b"<165>1 x").unwrap();
        assert_eq!((pri.facility(), pri.facility_code()), ("local4", 20));
        assert_eq!((pri.severity(), pri.severity_code()), ("notice", 5));
        assert_eq!(rest, b"1 x");
        let (pri, _) = split_pri(b"<0>").unwrap();
        assert_eq!((pri.facility(), pri.severity()), ("kern", "emerg"));
        let (pri, _) = split_pri(b"<191>").unwrap();
        assert_eq!((pri.facility(), pri.severity()), ("local7", "debug"));
    }

    #[test]
    fn malformed_pri_is_none() {
        for bad in [
            &b"<192>x"[..],
            b"<>x",
            b"<1234>x",
            b"<13x",
            b"13>x",
            b"<-1>",
            b"<999>",
            b"",
        ] {
            assert_eq!(split_pri(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(split_pri(b"<013>x").is_some());
    }

    #[test]
    fn severity_maps_to_priority_by_the_documented_rule() {
        let priority = |severity: u8| Pri::from_value(8 + severity).unwrap().priority();
        let all: Vec<_> = (0..8).map(priority).collect();
        assert_eq!(
            all,
            ["high", "high", "high", "high", "normal", "normal", "normal", "low"]
        );
    }
}
