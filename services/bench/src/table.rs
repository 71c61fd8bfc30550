//! The printed table (each figure beside its baseline and the ratio), the notes under it,
//! and the results file (`--results`).

use std::fmt::Write as _;

#[derive(Debug, Clone)]
pub struct Row {
    pub measure: String,
    pub hub: f64,
    pub baseline: f64,
    pub target: String,
}

impl Row {
    pub fn ratio(&self) -> f64 {
        self.hub / self.baseline
    }
}

/// Rows and notes, in the order measured. Other comparisons (a peer system) add their rows
/// the same way.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    pub fn row(
        &mut self,
        measure: impl Into<String>,
        hub: f64,
        baseline: f64,
        target: impl Into<String>,
    ) {
        let row = Row {
            measure: measure.into(),
            hub,
            baseline,
            target: target.into(),
        };
        println!(
            "  {:<62} {:>11.2} {:>11.2} {:>8.2}",
            row.measure,
            row.hub,
            row.baseline,
            row.ratio()
        );
        self.rows.push(row);
    }

    /// A line under the table, saying how a figure was measured or what was found.
    pub fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        println!("  note: {text}");
        self.notes.push(text);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<64} {:>11} {:>11} {:>8}  target",
            "measure", "hub", "baseline", "ratio"
        );
        for row in &self.rows {
            let line = format!(
                "{:<64} {:>11.2} {:>11.2} {:>8.2}  {}",
                row.measure,
                row.hub,
                row.baseline,
                row.ratio(),
                row.target
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }

    /// Markdown: the machine, the command line, the table and notes.
    pub fn results(&self, machine: &[(&'static str, String)], command: &str) -> String {
        let mut out = String::from("# hub-bench results\n\n");
        let _ = writeln!(
            out,
            "One run of `{command}` ({}).\n",
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
        );
        out.push_str("## Machine\n\n");
        for (name, value) in machine {
            let _ = writeln!(out, "- {name}: {value}");
        }
        out.push_str("\n## Table\n\n```text\n");
        out.push_str(&self.render());
        out.push_str("```\n");
        out
    }
}
