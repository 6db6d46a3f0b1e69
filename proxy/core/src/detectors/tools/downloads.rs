//! A file downloaded earlier in the script and then run: fetched to a
//! name (`curl -o x URL`, `wget URL`, `tftp … -c get`) or written from
//! what a download printed (`s=$(curl …); echo "$s" | base64 -d > /tmp/.x`),
//! then run as a program or as the script an interpreter is given.

use super::analyze::{basename, Analysis, Analyzer};
use super::command_io::output_values;
use super::effects::Effect;
use crate::detectors::shell::{lexer::RedirOp, Script};

/// Programs that download files.
const FETCHERS: &[&str] = &[
    "curl",
    "wget",
    "invoke-webrequest",
    "iwr",
    "aria2c",
    "lwp-download",
    "axel",
    "tftp",
];

/// Programs that run the script file given as their first operand.
const RUNS_FILE: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "python",
    "python3",
    "perl",
    "ruby",
    "node",
    "source",
    ".",
    "nohup",
    "powershell",
    "start-process",
];

impl Analyzer<'_> {
    /// A file downloaded earlier in the script and then made executable or
    /// run.
    pub(super) fn download_then_run(&self, script: &Script, out: &mut Analysis) {
        let mut downloaded: Vec<String> = Vec::new();
        for (i, c) in script.commands.iter().enumerate() {
            // Files written from what a download printed, on the way through
            // other programs (`s=$(curl …); echo "$s" | base64 -d > /tmp/.x`),
            // count as downloaded.
            if !FETCHERS.contains(&c.program.as_str())
                && script
                    .upstream(i)
                    .iter()
                    .any(|&j| FETCHERS.contains(&script.commands[j].program.as_str()))
            {
                downloaded.extend(
                    c.redirects
                        .iter()
                        .filter(|r| matches!(r.op, RedirOp::Out | RedirOp::Append))
                        .filter(|r| !r.target.starts_with("/dev/"))
                        .map(|r| basename(&r.target)),
                );
            }
            if FETCHERS.contains(&c.program.as_str()) {
                downloaded.extend(output_values(c).iter().map(|f| basename(f)));
                // `tftp HOST -c get REMOTE [LOCAL]`
                if let Some(at) = c
                    .args
                    .windows(2)
                    .position(|w| w[0] == "-c" && w[1] == "get")
                {
                    let names: Vec<&String> = c.args[at + 2..].iter().take(2).collect();
                    if let Some(f) = names.last() {
                        downloaded.push(basename(f));
                    }
                }
                // `lwp-download URL FILE`
                if c.program == "lwp-download" {
                    if let Some(f) = c.args.iter().filter(|a| !a.starts_with('-')).nth(1) {
                        downloaded.push(basename(f));
                    }
                }
                for r in &c.redirects {
                    if matches!(r.op, RedirOp::Out | RedirOp::Append) {
                        downloaded.push(basename(&r.target));
                    }
                }
                if c.program == "wget"
                    && !c
                        .args
                        .iter()
                        .any(|a| a == "-O" || a == "-qO-" || a == "-O-")
                {
                    if let Some(url) = c.args.iter().find(|a| a.contains("://")) {
                        downloaded.push(basename(url.split(['?', '#']).next().unwrap_or(url)));
                    }
                }
                continue;
            }
            if downloaded.is_empty() {
                continue;
            }
            // Run as the program, or as the script an interpreter runs (its
            // first operand: `python3 summarize.py data.json` runs
            // summarize.py, not the downloaded data).
            let script_arg = c.args.iter().find(|a| !a.starts_with('-'));
            let runs = downloaded.iter().any(|f| {
                !f.is_empty()
                    && (c.program.eq_ignore_ascii_case(f)
                        || (RUNS_FILE.contains(&c.program.as_str())
                            && script_arg.is_some_and(|a| {
                                basename(a) == *f && !a.ends_with(".tar.gz") && !a.ends_with(".tgz")
                            })))
            });
            if runs {
                out.push(
                    Effect::DownloadExec,
                    "download_then_run",
                    "Downloads a file and runs it",
                    &c.line,
                );
            }
        }
    }
}
