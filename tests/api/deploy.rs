//! The files in `deploy/` that no other test starts: the systemd unit, checked by
//! `systemd-analyze verify` (where systemd's tools are installed; skipped elsewhere, saying so).

use std::process::Command;

const UNIT: &str = include_str!("../../deploy/loginwith.service");

/// The value of `Key=` in the unit, if set once.
fn setting<'a>(key: &str) -> Vec<&'a str> {
    UNIT.lines().filter_map(|line| line.strip_prefix(key)?.strip_prefix('=')).collect()
}

#[test]
fn the_systemd_unit_is_hardened_and_stops_after_the_grace_period() {
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(setting(key), [value], "{key}");
    }
    // The supervisor must wait longer than loginwith's own grace before SIGKILL.
    let stop: u64 = setting("TimeoutStopSec")[0].parse().expect("TimeoutStopSec in seconds");
    assert!(stop > loginwith::config::DEFAULT_SHUTDOWN_GRACE_SECS, "TimeoutStopSec={stop}");
}

#[test]
fn systemd_analyze_verifies_the_unit_without_a_warning() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    };
    assert!(version.status.success());
    let dir = tempfile::tempdir().unwrap();
    // The unit as installed, but with this build's binary (verify checks that it is executable).
    let unit = UNIT.replace("/usr/local/bin/loginwith", env!("CARGO_BIN_EXE_loginwith"));
    let path = dir.path().join("loginwith.service");
    std::fs::write(&path, unit).unwrap();
    let output =
        Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "systemd-analyze verify failed:\n{stderr}");
    let about_the_unit: Vec<&str> = stderr.lines().filter(|l| l.contains("loginwith.service")).collect();
    assert!(about_the_unit.is_empty(), "systemd-analyze warns about the unit:\n{stderr}");
}
