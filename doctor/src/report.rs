//! Findings and how they are printed: for people, and as JSON for CI.

use serde_json::json;

/// One problem: where it is, why it breaks logins behind a load balancer,
/// and what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable name of the check, for scripts and for docs/troubleshooting.md.
    pub check: &'static str,
    /// 1-based line in the bootstrap file.
    pub line: usize,
    /// The listener, route or cluster it is about.
    pub place: String,
    /// What is wrong.
    pub problem: String,
    /// What it breaks.
    pub why: String,
    /// What to change.
    pub fix: String,
}

/// Everything found in one bootstrap.
#[derive(Debug, Default)]
pub struct Report {
    /// The problems, by line.
    pub findings: Vec<Finding>,
    /// What could not be checked, and why (no effect on the exit status).
    pub notes: Vec<String>,
}

impl Report {
    /// Adds a finding, once (a cluster shared by several routes is reported
    /// once).
    pub fn push(&mut self, f: Finding) {
        if !self.findings.contains(&f) {
            self.findings.push(f);
        }
    }

    pub(crate) fn sort(&mut self) {
        self.findings.sort_by_key(|f| f.line);
    }

    /// The checks that found something, in line order.
    pub fn checks(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.check).collect()
    }

    /// The report for people: one block per finding, then a summary line.
    pub fn text(&self, file: &str) -> String {
        let mut out = String::new();
        for f in &self.findings {
            out.push_str(&format!(
                "{file}:{}: {}: {} [{}]\n  why: {}\n  fix: {}\n\n",
                f.line, f.place, f.problem, f.check, f.why, f.fix
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        match self.findings.len() {
            0 => out.push_str(&format!("{file}: no problems found\n")),
            1 => out.push_str(&format!("{file}: 1 problem\n")),
            n => out.push_str(&format!("{file}: {n} problems\n")),
        }
        out
    }

    /// The report as one JSON object: `{"file", "problems": [...]}`.
    pub fn json(&self, file: &str) -> String {
        let problems: Vec<_> = self
            .findings
            .iter()
            .map(|f| {
                json!({
                    "check": f.check,
                    "line": f.line,
                    "where": f.place,
                    "problem": f.problem,
                    "why": f.why,
                    "fix": f.fix,
                })
            })
            .collect();
        json!({ "file": file, "problems": problems, "notes": self.notes }).to_string()
    }
}
