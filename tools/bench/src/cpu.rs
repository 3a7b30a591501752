//! CPU time used by this process and by the broker it started, read from `/proc` (Linux).
//!
//! On a machine shared with other work a rate says little about where the time went; CPU
//! per record does: it tells a client that costs more from a broker that is made to work
//! harder. Elsewhere (no `/proc`) nothing is measured and nothing is printed.

use std::time::Duration;

/// `/proc` counts CPU time in ticks of this many per second (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cpu {
    /// By this process.
    own: Duration,
    /// By the broker process this one started.
    broker: Duration,
}

impl Cpu {
    /// The CPU time used so far, if `/proc` tells it.
    pub(crate) fn now() -> Option<Self> {
        let me = std::process::id();
        let own = ticks(me)?.1;
        let broker = children(me)
            .into_iter()
            .filter_map(ticks)
            .filter(|(name, _)| name == "tansu")
            .map(|(_, used)| used)
            .sum();
        Some(Self { own, broker })
    }

    /// The CPU time used since `before`, per record of `records`, for a report line.
    pub(crate) fn per_record(before: Option<Self>, records: u64) -> Option<String> {
        let (before, after) = (before?, Self::now()?);
        let micros = |d: Duration| d.as_secs_f64() * 1e6 / records.max(1) as f64;
        Some(format!(
            "cpu per record: bench {:.0} us, broker {:.0} us",
            micros(after.own.saturating_sub(before.own)),
            micros(after.broker.saturating_sub(before.broker)),
        ))
    }
}

/// The process's name and CPU time (user + system), from `/proc/<pid>/stat`.
fn ticks(pid: u32) -> Option<(String, Duration)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (name) state ppid …`: the name may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
    let used: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, Duration::from_millis(used * 1000 / TICKS_PER_SECOND)))
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let close = stat.rfind(')')?;
                    stat.get(close + 2..)?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}
