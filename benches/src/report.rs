//! Result rows: a human table at the end, and one JSON line per row (stdout, and appended to
//! the `--json` file as soon as the row is measured, so an interrupted run keeps its rows).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::stats::Samples;

/// What a throughput counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Steps,
    Workflows,
    Ops,
    Rows,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Self::Steps => "steps",
            Self::Workflows => "workflows",
            Self::Ops => "ops",
            Self::Rows => "rows",
        }
    }
}

/// What a floor ratio divides: a latency by one raw commit's (lower is better, 1.0 is one
/// commit), or a rate by the raw rate (higher is better, 1.0 is the floor's rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    Latency,
    Rate,
}

impl Basis {
    fn name(self) -> &'static str {
        match self {
            Self::Latency => "p50 / commit p50",
            Self::Rate => "rate / floor rate",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::Latency => "lat",
            Self::Rate => "rate",
        }
    }
}

/// One measured figure set.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    workload: String,
    store: String,
    runs: usize,
    rate: Option<(f64, Unit)>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    floor_ratio: Option<(f64, Basis)>,
    extra: Map<String, Value>,
    /// A line printed under the table.
    note: Option<String>,
}

impl Row {
    pub(crate) fn new(workload: &str, store: &str, runs: usize) -> Self {
        Self {
            workload: workload.to_owned(),
            store: store.to_owned(),
            runs,
            rate: None,
            p50_ms: None,
            p99_ms: None,
            floor_ratio: None,
            extra: Map::new(),
            note: None,
        }
    }

    pub(crate) fn rate(mut self, per_second: f64, unit: Unit) -> Self {
        self.rate = Some((per_second, unit));
        self
    }

    pub(crate) fn latency(mut self, samples: &Samples) -> Self {
        self.p50_ms = samples.p50();
        self.p99_ms = samples.p99();
        self.extra.insert("samples".into(), samples.len().into());
        self
    }

    pub(crate) fn ratio(mut self, ratio: Option<f64>, basis: Basis) -> Self {
        self.floor_ratio = ratio.filter(|r| r.is_finite()).map(|r| (r, basis));
        self
    }

    pub(crate) fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Says something under the table that the columns cannot.
    pub(crate) fn note(mut self, note: String) -> Self {
        self.note = Some(format!("{} ({}): {note}", self.workload, self.store));
        self
    }

    /// The row on one line, for progress output.
    pub(crate) fn summary(&self) -> String {
        let [workload, _, runs, rate, p50, p99, ratio] = self.cells();
        format!("{workload}: {runs} runs, {rate}, p50 {p50} ms, p99 {p99} ms, floor {ratio}")
    }

    pub(crate) fn to_json(&self) -> Value {
        let rate_of = |unit| self.rate.filter(|r| r.1 == unit).map(|r| round(r.0));
        let mut object = json!({
            "workload": self.workload,
            "store": self.store,
            "runs": self.runs,
            "steps_per_s": rate_of(Unit::Steps),
            "p50_ms": self.p50_ms.map(round),
            "p99_ms": self.p99_ms.map(round),
            "floor_ratio": self.floor_ratio.map(|r| round(r.0)),
        });
        let map = object.as_object_mut().expect("an object");
        if let Some((rate, unit)) = self.rate {
            map.insert(format!("{}_per_s", unit.name()), round(rate).into());
        }
        if let Some((_, basis)) = self.floor_ratio {
            map.insert("floor_basis".into(), basis.name().into());
        }
        for (key, value) in &self.extra {
            let value = match value.as_f64() {
                Some(v) if value.is_f64() => round(v).into(),
                _ => value.clone(),
            };
            map.insert(key.clone(), value);
        }
        object
    }

    fn cells(&self) -> [String; 7] {
        let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.2}"));
        [
            self.workload.clone(),
            self.store.clone(),
            self.runs.to_string(),
            self.rate.map_or("–".to_owned(), |(r, u)| {
                format!("{} {}/s", thousands(r), u.name())
            }),
            ms(self.p50_ms),
            ms(self.p99_ms),
            self.floor_ratio
                .map_or("–".to_owned(), |(r, b)| format!("{r:.2}× {}", b.short())),
        ]
    }
}

fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Collects rows; writes the JSON file as it goes.
#[derive(Debug)]
pub(crate) struct Report {
    rows: Vec<Row>,
    json_file: Option<File>,
    mode: &'static str,
}

impl Report {
    pub(crate) fn new(json_path: Option<&Path>, mode: &'static str) -> anyhow::Result<Self> {
        let json_file = match json_path {
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            None => None,
        };
        Ok(Self {
            rows: Vec::new(),
            json_file,
            mode,
        })
    }

    pub(crate) fn add(&mut self, row: Row) -> anyhow::Result<()> {
        let row = row.with("mode", self.mode);
        if let Some(file) = &mut self.json_file {
            writeln!(file, "{}", row.to_json())?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// The table, the rows' notes, then the JSON lines, on stdout.
    pub(crate) fn print(&self) {
        println!("{}", self.table());
        for note in self.rows.iter().filter_map(|r| r.note.as_ref()) {
            println!("{note}");
        }
        println!();
        for row in &self.rows {
            println!("{}", row.to_json());
        }
    }

    fn table(&self) -> String {
        let header = [
            "workload",
            "store",
            "runs",
            "throughput",
            "p50 ms",
            "p99 ms",
            "floor ratio",
        ]
        .map(str::to_owned);
        let body: Vec<[String; 7]> = self.rows.iter().map(Row::cells).collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for cells in &body {
            for (w, c) in widths.iter_mut().zip(cells) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: &[String; 7]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
                .collect();
            format!("| {} |", padded.join(" | "))
        };
        let rule = widths.map(|w| "-".repeat(w));
        let mut out = vec![line(&header), line(&rule)];
        out.extend(body.iter().map(line));
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_the_fixed_keys() {
        let row = Row::new("a/empty", "postgres", 3)
            .rate(1234.5678, Unit::Workflows)
            .latency(&Samples::from_millis(vec![1.0, 2.0, 3.0]))
            .ratio(Some(2.0), Basis::Latency);
        let json = row.to_json();
        for key in [
            "workload",
            "store",
            "runs",
            "steps_per_s",
            "p50_ms",
            "p99_ms",
            "floor_ratio",
        ] {
            assert!(json.get(key).is_some(), "missing {key}: {json}");
        }
        assert_eq!(json["workflows_per_s"], 1234.568);
        assert_eq!(json["steps_per_s"], Value::Null);
        assert_eq!(json["p50_ms"], 2.0);
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
    }
}
