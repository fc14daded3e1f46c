//! The tables `reconcile` prints: one line per event day, then one per difference.
//!
//! Hand-written: two left-aligned tables are a few lines of padding, not worth a dependency.

use std::fmt::Write;

use super::{Action, Report};

impl Report {
    pub fn render(&self, repaired: bool) -> String {
        let mut out = String::new();
        let days: Vec<Vec<String>> = self
            .days
            .iter()
            .map(|d| {
                let s = &d.before;
                let pending = s.stream.iter().filter(|e| e.pending.is_some()).count();
                vec![
                    d.label(),
                    d.day.to_string(),
                    format!(
                        "{}/{}",
                        s.redis_count.map_or("-".into(), |n| n.to_string()),
                        s.daily_limit
                    ),
                    s.redis_users.len().to_string(),
                    s.postgres.len().to_string(),
                    format!("{} ({pending} pending)", s.stream.len()),
                    d.found.len().to_string(),
                    d.remaining.len().to_string(),
                ]
            })
            .collect();
        let head = [
            "event",
            "day",
            "count/limit",
            "redis users",
            "postgres",
            "stream",
            "found",
            "left",
        ];
        out.push_str(&table(&head, &days));

        let differences: Vec<Vec<String>> = self
            .days
            .iter()
            .flat_map(|d| {
                d.found.iter().map(move |f| {
                    let left = d
                        .remaining
                        .iter()
                        .any(|r| r.kind() == f.kind() && r.subject() == f.subject());
                    vec![
                        d.short_label(),
                        d.day.to_string(),
                        f.kind().to_string(),
                        f.subject(),
                        f.detail(),
                        if !repaired {
                            "-"
                        } else if left {
                            "no"
                        } else {
                            "yes"
                        }
                        .to_string(),
                    ]
                })
            })
            .collect();
        if differences.is_empty() {
            out.push_str("\nno differences\n");
        } else {
            out.push('\n');
            out.push_str(&table(
                &["event", "day", "difference", "subject", "detail", "repaired"],
                &differences,
            ));
        }
        for d in &self.days {
            if let Some(note) = &d.note {
                let _ = writeln!(out, "{} {}: {note}", d.event, d.day);
            }
        }
        let actions: Vec<&Action> = self.days.iter().flat_map(|d| &d.actions).collect();
        for action in actions {
            let _ = match action {
                Action::Done(what) => writeln!(out, "repaired: {what}"),
                Action::Skipped(why) => writeln!(out, "not repaired: {why}"),
            };
        }
        let left: usize = self.days.iter().map(|d| d.remaining.len()).sum();
        let _ = writeln!(out, "\n{} event days, {left} differences left", self.days.len());
        out
    }
}

/// Left-aligned columns, two spaces apart.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(head.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

impl super::DayReport {
    /// The event id, with `:<bucket>` for buckets other than 0 of a sharded event.
    fn label(&self) -> String {
        match self.shard {
            0 => self.event.to_string(),
            shard => format!("{}:{shard}", self.event),
        }
    }

    fn short_label(&self) -> String {
        let short = &self.event.to_string()[..8];
        match self.shard {
            0 => short.to_string(),
            shard => format!("{short}:{shard}"),
        }
    }
}
