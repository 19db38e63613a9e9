//! Keeps libbpf's warnings instead of printing them, so a failed load becomes one line of
//! error that quotes the verifier, and the full log is there with `RPROF_DEBUG=1`.
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn keep(level: PrintLevel, msg: String) {
    if std::env::var_os("RPROF_DEBUG").is_some() {
        eprint!("{msg}");
    }
    if level == PrintLevel::Debug {
        return;
    }
    if let Ok(mut log) = LOG.lock() {
        log.push(msg);
    }
}

/// Routes libbpf's messages here. Call before opening any skeleton.
pub fn capture() {
    let level = if std::env::var_os("RPROF_DEBUG").is_some() {
        PrintLevel::Debug
    } else {
        PrintLevel::Info
    };
    libbpf_rs::set_print(Some((level, keep)));
}

/// Takes what libbpf said since the last call.
pub fn take() -> Vec<String> {
    LOG.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// The most telling line of a failed load: the verifier's last word if it ran, otherwise
/// libbpf's first complaint.
pub fn failure_reason(lines: &[String]) -> Option<String> {
    let text: Vec<&str> = lines.iter().flat_map(|m| m.lines()).collect();
    if let Some(end) = text
        .iter()
        .position(|l| l.contains("-- END PROG LOAD LOG --"))
    {
        let verifier =
            text[..end].iter().rev().map(|l| l.trim()).find(|l| {
                !l.is_empty() && !l.starts_with("processed ") && !l.contains("BEGIN PROG")
            });
        if let Some(line) = verifier {
            return Some(format!("verifier: {line}"));
        }
    }
    let complaints: Vec<String> = text
        .iter()
        .map(|l| l.trim().trim_start_matches("libbpf: ").to_string())
        .filter(|l| !l.contains("optional"))
        .collect();
    complaints
        .iter()
        .find(|l| l.contains("failed"))
        .or_else(|| complaints.iter().find(|l| l.contains("rror")))
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_the_verifier_when_it_spoke() {
        let log = vec![
            "libbpf: prog 'p': BPF program load failed: Permission denied\n".to_string(),
            "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: (b7) r0 = 0\nR1 invalid mem access 'scalar'\nprocessed 3 insns\n-- END PROG LOAD LOG --\n".to_string(),
        ];
        assert_eq!(
            failure_reason(&log).unwrap(),
            "verifier: R1 invalid mem access 'scalar'"
        );
    }

    #[test]
    fn falls_back_to_libbpfs_complaint() {
        let log = vec![
            "libbpf: object 'x': failed (-22) to create BPF token from '/sys/fs/bpf', skipping optional step...\n".to_string(),
            "libbpf: Error in bpf_create_map_xattr(counts): -ENOMEM. Retrying without BTF.\n".to_string(),
            "libbpf: map 'counts': failed to create: -ENOMEM\n".to_string(),
        ];
        assert_eq!(
            failure_reason(&log).unwrap(),
            "map 'counts': failed to create: -ENOMEM"
        );
    }
}
