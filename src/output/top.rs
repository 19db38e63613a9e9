//! The top table, as `go tool pprof -top` prints it: per function, flat (as the leaf) and cum
//! (anywhere in the stack, once per sample), sorted by flat.
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::pprof::Stack;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopRow {
    pub name: String,
    pub flat: i64,
    pub cum: i64,
}

/// Flat and cumulative values per function, largest flat first, and the total.
pub fn top_rows(stacks: &[Stack]) -> (Vec<TopRow>, i64) {
    let mut flat: HashMap<&str, i64> = HashMap::new();
    let mut cum: HashMap<&str, i64> = HashMap::new();
    let mut total = 0;
    for s in stacks {
        // Saturating: a hostile profile's values must not wrap around (or panic).
        total = i64::saturating_add(total, s.value);
        if let Some(leaf) = s.frames.last() {
            let v = flat.entry(&leaf.name).or_default();
            *v = v.saturating_add(s.value);
        }
        let mut seen = HashSet::new();
        for f in &s.frames {
            if seen.insert(f.name.as_str()) {
                let v = cum.entry(&f.name).or_default();
                *v = v.saturating_add(s.value);
            }
        }
    }
    let mut rows: Vec<TopRow> = cum
        .into_iter()
        .map(|(name, cum)| TopRow {
            name: name.to_owned(),
            flat: flat.get(name).copied().unwrap_or(0),
            cum,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.flat
            .cmp(&a.flat)
            .then(b.cum.cmp(&a.cum))
            .then(a.name.cmp(&b.name))
    });
    (rows, total)
}

/// Scales values of `unit` for display: one unit for the whole table, chosen by `largest`.
fn scale(largest: i64, unit: &str) -> (f64, &'static str) {
    let v = largest.unsigned_abs() as f64;
    match unit {
        "nanoseconds" => match v {
            v if v >= 1e9 => (1e9, "s"),
            v if v >= 1e6 => (1e6, "ms"),
            v if v >= 1e3 => (1e3, "us"),
            _ => (1.0, "ns"),
        },
        "bytes" => match v {
            v if v >= 1024.0 * 1024.0 * 1024.0 => (1024.0 * 1024.0 * 1024.0, "GB"),
            v if v >= 1024.0 * 1024.0 => (1024.0 * 1024.0, "MB"),
            v if v >= 1024.0 => (1024.0, "kB"),
            _ => (1.0, "B"),
        },
        _ => (1.0, ""),
    }
}

fn show(v: i64, (div, suffix): (f64, &str)) -> String {
    // pprof writes an empty cell as a bare 0.
    if v == 0 {
        "0".into()
    } else if div == 1.0 {
        format!("{v}{suffix}")
    } else {
        format!("{:.2}{suffix}", v as f64 / div)
    }
}

fn percent(v: i64, total: i64) -> String {
    if total == 0 {
        "0%".into()
    } else {
        format!("{:.2}%", v as f64 * 100.0 / total as f64)
    }
}

/// The table, like `go tool pprof -top`, limited to `limit` rows.
pub fn format_top(rows: &[TopRow], total: i64, unit: &str, limit: usize) -> String {
    let scale = scale(total, unit);
    let shown = rows
        .iter()
        .take(limit)
        .fold(0i64, |acc, r| acc.saturating_add(r.flat));
    let mut out = format!(
        "Showing top {} nodes out of {}, accounting for {}, {} of {} total\n",
        limit.min(rows.len()),
        rows.len(),
        show(shown, scale),
        percent(shown, total),
        show(total, scale)
    );
    let _ = writeln!(
        out,
        "{:>10} {:>7} {:>7} {:>10} {:>7}  name",
        "flat", "flat%", "sum%", "cum", "cum%"
    );
    let mut sum = 0;
    for r in rows.iter().take(limit) {
        sum = i64::saturating_add(sum, r.flat);
        let _ = writeln!(
            out,
            "{:>10} {:>7} {:>7} {:>10} {:>7}  {}",
            show(r.flat, scale),
            percent(r.flat, total),
            percent(sum, total),
            show(r.cum, scale),
            percent(r.cum, total),
            r.name
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pprof::Frame;

    fn stack(names: &[&str], value: i64) -> Stack {
        Stack {
            frames: names
                .iter()
                .map(|n| Frame {
                    name: n.to_string(),
                    kernel: false,
                    inlined: false,
                })
                .collect(),
            value,
            labels: vec![],
        }
    }

    #[test]
    fn flat_is_the_leaf_and_cum_counts_once_per_sample() {
        let stacks = [
            stack(&["main", "a", "leaf"], 30),
            stack(&["main", "b", "leaf"], 10),
            stack(&["main", "rec", "rec"], 5),
        ];
        let (rows, total) = top_rows(&stacks);
        assert_eq!(total, 45);
        let row = |n: &str| rows.iter().find(|r| r.name == n).unwrap().clone();
        assert_eq!((row("leaf").flat, row("leaf").cum), (40, 40));
        assert_eq!((row("main").flat, row("main").cum), (0, 45));
        assert_eq!((row("rec").flat, row("rec").cum), (5, 5));
        assert_eq!(rows[0].name, "leaf");
    }

    #[test]
    fn formats_like_pprof() {
        let (rows, total) = top_rows(&[stack(&["main", "leaf"], 1_500_000_000)]);
        let table = format_top(&rows, total, "nanoseconds", 10);
        assert!(
            table.contains("1.50s") && table.contains("100.00%"),
            "{table}"
        );
        assert!(table.lines().nth(2).unwrap().ends_with("leaf"));
    }
}
