//! `oidc-edge-doctor [--json] ENVOY_CONFIG`: checks an Envoy bootstrap for
//! the settings that break OpenID Connect logins behind a load balancer.
//!
//! Exit status: 0 no problems, 1 problems found, 2 the file cannot be read
//! as an Envoy bootstrap (or bad arguments).

use std::process::ExitCode;

const USAGE: &str = "usage: oidc-edge-doctor [--json] ENVOY_CONFIG (YAML or JSON)";

fn main() -> ExitCode {
    let mut json = false;
    let mut file = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                println!("{USAGE}\nexit status: 0 no problems, 1 problems found, 2 unreadable");
                return ExitCode::SUCCESS;
            }
            s if s.starts_with('-') && s != "-" => {
                eprintln!("oidc-edge-doctor: unknown option {s}\n{USAGE}");
                return ExitCode::from(2);
            }
            _ if file.is_some() => {
                eprintln!("oidc-edge-doctor: give one configuration file\n{USAGE}");
                return ExitCode::from(2);
            }
            _ => file = Some(a),
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let text = if file == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map(|_| s)
    } else {
        std::fs::read_to_string(&file)
    };
    let result = text
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|t| oidc_edge_doctor::diagnose(&t));
    match result {
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "file": file, "error": e }));
            } else {
                eprintln!("{file}: {e}");
            }
            ExitCode::from(2)
        }
        Ok(report) => {
            if json {
                println!("{}", report.json(&file));
            } else {
                print!("{}", report.text(&file));
            }
            if report.findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
    }
}
