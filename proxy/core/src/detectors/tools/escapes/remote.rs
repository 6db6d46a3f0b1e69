//! Commands run on another machine or in a container: git's ssh and
//! upload-pack options, ssh remote commands and `ProxyCommand`, scp/rsync
//! `-e`, `docker exec`, `kubectl exec`.

use super::{
    container_command, shell_join, ssh_command_option, value_after, Embedded, SSH_VALUE_OPTS,
};

use crate::detectors::shell::Cmd;

/// What the programs of this family run; false when `c` is not one of them.
pub(super) fn embedded(c: &Cmd, out: &mut Vec<Embedded>) -> bool {
    let args = &c.args;
    match c.program.as_str() {
        "git" => {
            out.extend(
                super::super::deferred::git(args)
                    .into_iter()
                    .map(Embedded::Command),
            );
            for v in value_after(args, &["--upload-pack", "-u", "--receive-pack", "--exec"]) {
                out.push(Embedded::Command(v.to_string()));
            }
            for a in args {
                if let Some(cmd) = a.strip_prefix("ext::") {
                    out.push(Embedded::Command(cmd.replace("%S", "").to_string()));
                }
            }
        }
        "ssh" | "autossh" => {
            for v in value_after(args, &["-o"]) {
                if let Some(cmd) = ssh_command_option(v) {
                    out.push(Embedded::Command(cmd.to_string()));
                }
            }
            // The remote command: operands after the host.
            let mut i = 0;
            let mut host_seen = false;
            while i < args.len() {
                let a = args[i].as_str();
                if !host_seen {
                    if a.starts_with('-') {
                        i += if SSH_VALUE_OPTS.contains(&a) { 2 } else { 1 };
                        continue;
                    }
                    host_seen = true;
                    i += 1;
                    continue;
                }
                let words = &args[i..];
                out.push(Embedded::Command(words.join(" ")));
                break;
            }
        }
        "scp" | "sftp" => {
            for v in value_after(args, &["-S"]) {
                out.push(Embedded::Command(v.to_string()));
            }
            for v in value_after(args, &["-o"]) {
                if let Some(cmd) = ssh_command_option(v) {
                    out.push(Embedded::Command(cmd.to_string()));
                }
            }
        }
        "rsync" => {
            for v in value_after(args, &["-e", "--rsh", "--rsync-path"]) {
                out.push(Embedded::Command(v.to_string()));
            }
        }
        "docker" | "podman" | "nerdctl" => {
            if let Some(cmd) = container_command(c) {
                out.push(Embedded::Command(cmd));
            }
        }
        "kubectl" | "oc" => {
            // After global options (`kubectl -n prod exec …`).
            if matches!(
                super::super::analyze::subcommand(c),
                Some("exec" | "run" | "debug" | "attach")
            ) {
                if let Some(p) = args.iter().position(|a| a == "--") {
                    let words = &args[p + 1..];
                    if !words.is_empty() {
                        out.push(Embedded::Command(shell_join(words)));
                    }
                }
            }
        }
        _ => return false,
    }
    true
}
