//! What `status` reports, put together from the broker's answers, and how it is printed: an
//! aligned table or one JSON object.

use std::collections::{BTreeMap, BTreeSet};

use eventmart_runtime::consumer::ParkedSummary;
use serde_json::{Value, json};

/// A place in a partition: topic, partition, offset.
pub(super) type At = (String, i32, i64);

/// The groups to show, from what the broker said: every group that has committed a position
/// on the event topics, and every group in `always` even without one. `high` holds each
/// partition's high watermark, `written` the timestamp of the first record at or after a
/// position (milliseconds since the epoch, as is `now`).
pub(super) fn group_statuses(
    candidates: &BTreeSet<String>,
    always: &BTreeSet<String>,
    committed: &BTreeMap<String, Vec<At>>,
    high: &BTreeMap<(String, i32), i64>,
    written: &BTreeMap<At, i64>,
    now: i64,
) -> Vec<GroupStatus> {
    candidates
        .iter()
        .filter_map(|group| {
            let positions = committed.get(group).cloned().unwrap_or_default();
            if positions.is_empty() && !always.contains(group) {
                return None;
            }
            let partitions = positions
                .into_iter()
                .map(|(topic, partition, offset)| {
                    let end = high.get(&(topic.clone(), partition)).copied().unwrap_or(0);
                    let lag_millis = if end <= offset {
                        Some(0)
                    } else {
                        written
                            .get(&(topic.clone(), partition, offset))
                            .map(|at| (now - at).max(0))
                    };
                    PartitionLag {
                        topic,
                        partition,
                        committed: offset,
                        high_watermark: end,
                        lag_millis,
                    }
                })
                .collect();
            Some(GroupStatus {
                group: group.clone(),
                partitions,
            })
        })
        .collect()
}
/// Everything `status` prints.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Status {
    /// The groups, by name.
    pub(super) groups: Vec<GroupStatus>,
    /// Each dead-letter topic's count.
    pub(super) dead_letters: Vec<DeadLetterCount>,
    /// What each group has parked, when any component's database could be read.
    pub(super) parked: Option<Vec<ParkedSummary>>,
    /// Why the broker could not list its groups, if it could not.
    pub(super) list_error: Option<String>,
    /// Event topics that do not exist.
    pub(super) missing_topics: Vec<String>,
}

/// One consumer group's positions.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct GroupStatus {
    group: String,
    /// Every partition it has committed a position on, by topic and partition.
    partitions: Vec<PartitionLag>,
}

/// A group's position in one partition.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PartitionLag {
    topic: String,
    partition: i32,
    /// The next offset the group will read.
    committed: i64,
    /// The offset the next record written to the partition will get.
    high_watermark: i64,
    /// Age of the oldest unconsumed record, in milliseconds: 0 when nothing is waiting, `None`
    /// when it could not be read.
    lag_millis: Option<i64>,
}

impl PartitionLag {
    /// Records written and not yet consumed.
    fn lag(&self) -> i64 {
        (self.high_watermark - self.committed).max(0)
    }
}

impl GroupStatus {
    /// Records not yet consumed, over every partition.
    fn lag(&self) -> i64 {
        self.partitions.iter().map(PartitionLag::lag).sum()
    }

    /// Age of its oldest unconsumed record, over every partition; `None` when one of them is
    /// unknown.
    fn lag_millis(&self) -> Option<i64> {
        self.partitions
            .iter()
            .map(|p| p.lag_millis)
            .try_fold(0, |max, age| age.map(|age| max.max(age)))
    }
}

/// Records in one dead-letter topic.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DeadLetterCount {
    pub(super) topic: String,
    /// `None` when the topic does not exist.
    pub(super) count: Option<i64>,
}

/// Seconds, to the millisecond, as JSON.
fn seconds_json(millis: Option<i64>) -> Value {
    millis.map_or(Value::Null, |ms| json!(ms as f64 / 1000.0))
}

/// Seconds, to a tenth, for a table; `?` when unknown.
fn seconds_text(millis: Option<i64>) -> String {
    match millis {
        Some(0) => "0".to_owned(),
        Some(ms) => format!("{:.1}", ms as f64 / 1000.0),
        None => "?".to_owned(),
    }
}

impl Status {
    pub(super) fn to_json(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|group| {
                let partitions: Vec<Value> = group
                    .partitions
                    .iter()
                    .map(|p| {
                        json!({
                            "topic": p.topic,
                            "partition": p.partition,
                            "committed": p.committed,
                            "high_watermark": p.high_watermark,
                            "lag": p.lag(),
                            "lag_seconds": seconds_json(p.lag_millis),
                        })
                    })
                    .collect();
                // A group that has committed nothing has no lag to speak of.
                let committed = !group.partitions.is_empty();
                json!({
                    "group": group.group,
                    "lag": committed.then(|| group.lag()),
                    "lag_seconds": if committed { seconds_json(group.lag_millis()) } else { Value::Null },
                    "partitions": partitions,
                })
            })
            .collect();
        let dead_letters: Vec<Value> = self
            .dead_letters
            .iter()
            .map(|d| json!({ "topic": d.topic, "count": d.count }))
            .collect();
        let now = chrono::Utc::now().timestamp_millis();
        let parked: Option<Vec<Value>> = self.parked.as_ref().map(|parked| {
            parked
                .iter()
                .map(|p| {
                    json!({
                        "group": p.group,
                        "topic": p.topic,
                        "keys": p.keys,
                        "events": p.events,
                        "oldest_seconds": seconds_json(Some(now - p.oldest_parked_at)),
                    })
                })
                .collect()
        });
        json!({
            "groups": groups,
            "dead_letters": dead_letters,
            "parked": parked,
            "groups_listed_by_broker": self.list_error.is_none(),
        })
    }

    /// Two aligned tables: positions (a row per partition and a total per group), then
    /// dead-letter counts.
    pub(super) fn tables(&self) -> String {
        let mut rows = vec![row([
            "GROUP",
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "HIGH-WATERMARK",
            "LAG",
            "LAG-SECONDS",
        ])];
        for group in &self.groups {
            if group.partitions.is_empty() {
                rows.push(row([&group.group, "-", "-", "-", "-", "-", "-"]));
                continue;
            }
            for p in &group.partitions {
                rows.push(vec![
                    group.group.clone(),
                    p.topic.clone(),
                    p.partition.to_string(),
                    p.committed.to_string(),
                    p.high_watermark.to_string(),
                    p.lag().to_string(),
                    seconds_text(p.lag_millis),
                ]);
            }
            rows.push(vec![
                group.group.clone(),
                "(total)".to_owned(),
                String::new(),
                String::new(),
                String::new(),
                group.lag().to_string(),
                seconds_text(group.lag_millis()),
            ]);
        }
        let mut out = aligned(&rows);
        out.push('\n');
        let mut rows = vec![row(["DEAD-LETTER-TOPIC", "DEAD-LETTERS"])];
        for d in &self.dead_letters {
            let count = d
                .count
                .map_or_else(|| "(no such topic)".to_owned(), |c| c.to_string());
            rows.push(vec![d.topic.clone(), count]);
        }
        out.push_str(&aligned(&rows));
        if let Some(parked) = &self.parked {
            out.push('\n');
            out.push_str(&parked_table(parked, chrono::Utc::now().timestamp_millis()));
        }
        out
    }
}

/// The parked events by group and topic, with how long the oldest has waited.
fn parked_table(parked: &[ParkedSummary], now: i64) -> String {
    if parked.is_empty() {
        return "PARKED: none\n".to_owned();
    }
    let mut rows = vec![row([
        "GROUP",
        "TOPIC",
        "PARKED-KEYS",
        "PARKED-EVENTS",
        "OLDEST-SECONDS",
    ])];
    for p in parked {
        rows.push(vec![
            p.group.clone(),
            p.topic.clone(),
            p.keys.to_string(),
            p.events.to_string(),
            seconds_text(Some(now - p.oldest_parked_at)),
        ]);
    }
    aligned(&rows)
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// `rows` as lines with every column padded to its widest cell, two spaces apart.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (cell, width) in r.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(
        topic: &str,
        partition: i32,
        committed: i64,
        high: i64,
        ms: Option<i64>,
    ) -> PartitionLag {
        PartitionLag {
            topic: topic.to_owned(),
            partition,
            committed,
            high_watermark: high,
            lag_millis: ms,
        }
    }

    fn status() -> Status {
        Status {
            groups: vec![
                GroupStatus {
                    group: "inventory".to_owned(),
                    partitions: vec![
                        lag("orders", 0, 12, 12, Some(0)),
                        lag("orders", 1, 3, 7, Some(12_345)),
                    ],
                },
                GroupStatus {
                    group: "sales".to_owned(),
                    partitions: vec![],
                },
            ],
            dead_letters: vec![
                DeadLetterCount {
                    topic: "orders.dlq".to_owned(),
                    count: Some(2),
                },
                DeadLetterCount {
                    topic: "users.dlq".to_owned(),
                    count: None,
                },
            ],
            list_error: None,
            missing_topics: vec![],
            parked: None,
        }
    }

    #[test]
    fn parked_events_are_a_table_of_their_own() {
        let parked = [ParkedSummary {
            group: "orders".to_owned(),
            topic: "payments".to_owned(),
            keys: 2,
            events: 3,
            oldest_parked_at: 1_000,
        }];
        let text = parked_table(&parked, 13_500);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "GROUP   TOPIC     PARKED-KEYS  PARKED-EVENTS  OLDEST-SECONDS",
                "orders  payments  2            3              12.5",
            ]
        );
        assert_eq!(parked_table(&[], 0), "PARKED: none\n");
    }

    #[test]
    fn a_group_lags_by_the_sum_of_its_partitions_and_the_age_of_its_oldest_record() {
        let status = status();
        let inventory = &status.groups[0];
        assert_eq!(inventory.lag(), 4);
        assert_eq!(inventory.lag_millis(), Some(12_345));
    }

    #[test]
    fn a_group_whose_oldest_record_could_not_be_read_has_no_age() {
        let group = GroupStatus {
            group: "g".to_owned(),
            partitions: vec![lag("t", 0, 1, 5, Some(10)), lag("t", 1, 1, 5, None)],
        };
        assert_eq!(group.lag(), 8);
        assert_eq!(group.lag_millis(), None);
    }

    #[test]
    fn a_position_past_the_end_counts_as_no_lag() {
        assert_eq!(lag("t", 0, 9, 7, Some(0)).lag(), 0);
    }

    #[test]
    fn listed_groups_without_positions_are_left_out_and_known_ones_kept() {
        let names = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        let candidates: BTreeSet<String> = names(&["inventory", "sales", "kcat-session"]);
        let always: BTreeSet<String> = names(&["inventory", "sales"]);
        let committed = BTreeMap::from([
            (
                "inventory".to_owned(),
                vec![
                    ("orders".to_owned(), 0, 2),
                    ("orders".to_owned(), 1, 4),
                    ("orders".to_owned(), 2, 0),
                ],
            ),
            ("sales".to_owned(), vec![]),
        ]);
        let high = BTreeMap::from([
            (("orders".to_owned(), 0), 5),
            (("orders".to_owned(), 1), 4),
            (("orders".to_owned(), 2), 1),
        ]);
        // The record at orders/0@2 was written 90 s before now; orders/2@0 could not be read.
        let written = BTreeMap::from([(("orders".to_owned(), 0, 2), 10_000)]);

        let groups = group_statuses(&candidates, &always, &committed, &high, &written, 100_000);

        let names: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["inventory", "sales"]);
        let inventory = &groups[0].partitions;
        assert_eq!(inventory[0], lag("orders", 0, 2, 5, Some(90_000)));
        assert_eq!(inventory[1], lag("orders", 1, 4, 4, Some(0)));
        assert_eq!(inventory[2], lag("orders", 2, 0, 1, None));
        assert!(groups[1].partitions.is_empty());
    }

    #[test]
    fn tables_are_aligned_with_a_total_per_group() {
        let text = status().tables();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "GROUP      TOPIC    PARTITION  COMMITTED  HIGH-WATERMARK  LAG  LAG-SECONDS"
        );
        assert_eq!(
            lines[2],
            "inventory  orders   1          3          7               4    12.3"
        );
        assert_eq!(
            lines[3],
            "inventory  (total)                                        4    12.3"
        );
        assert_eq!(
            lines[4],
            "sales      -        -          -          -               -    -"
        );
        assert_eq!(lines[6], "DEAD-LETTER-TOPIC  DEAD-LETTERS");
        assert_eq!(lines[7], "orders.dlq         2");
        assert_eq!(lines[8], "users.dlq          (no such topic)");
    }

    #[test]
    fn json_has_each_partition_and_group_totals_in_seconds() {
        let json = status().to_json();
        assert_eq!(json["groups"][0]["group"], "inventory");
        assert_eq!(json["groups"][0]["lag"], 4);
        assert_eq!(json["groups"][0]["lag_seconds"], 12.345);
        assert_eq!(json["groups"][0]["partitions"][1]["high_watermark"], 7);
        assert_eq!(json["groups"][0]["partitions"][0]["lag_seconds"], 0.0);
        assert_eq!(json["groups"][1]["partitions"], json!([]));
        assert_eq!(json["groups"][1]["lag"], Value::Null);
        assert_eq!(json["groups"][1]["lag_seconds"], Value::Null);
        assert_eq!(json["dead_letters"][0]["count"], 2);
        assert_eq!(json["dead_letters"][1]["count"], Value::Null);
        assert_eq!(json["groups_listed_by_broker"], true);
    }
}
