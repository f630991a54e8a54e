//! `oidc-edge-doctor [--json] ENVOY_CONFIG`: checks an Envoy bootstrap for
//! the settings that break OpenID Connect logins behind a load balancer.
//!
//! Exit status: 0 no problems, 1 problems found, 2 the file cannot be read
//! as an Envoy bootstrap (or bad arguments).

use std::process::ExitCode;

const USAGE: &str = "usage: oidc-edge-doctor [--json] [--ecds FILE] ENVOY_CONFIG (YAML or JSON)\n  \
    --ecds FILE  the ECDS resource file holding the oidc-edge filter, when the bootstrap names a path \
    that is not readable here";

fn main() -> ExitCode {
    let mut json = false;
    let mut file = None;
    let mut ecds: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--ecds" => match args.next() {
                Some(f) => ecds = Some(f),
                None => {
                    eprintln!("oidc-edge-doctor: --ecds needs a file\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
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
        .and_then(|t| {
            // An ECDS path: the one given, else as written, else beside
            // the bootstrap.
            let dir = std::path::Path::new(&file)
                .parent()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_default();
            let read = |path: &str| -> Option<String> {
                let candidates = [
                    ecds.clone().map(std::path::PathBuf::from),
                    Some(std::path::PathBuf::from(path)),
                    std::path::Path::new(path).file_name().map(|n| dir.join(n)),
                ];
                candidates
                    .into_iter()
                    .flatten()
                    .find_map(|p| std::fs::read_to_string(p).ok())
            };
            oidc_edge_doctor::diagnose_with(&t, &read)
        });
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
