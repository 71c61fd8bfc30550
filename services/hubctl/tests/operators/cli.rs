//! Help, completions and usage errors.

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_completions_and_usage_errors() {
    let run = |args: &'static [&'static str]| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hubctl"))
            .args(args)
            .output()
            .await
            .expect("hubctl runs")
    };
    let help = run(&["--help"]).await;
    assert!(help.status.success());
    assert!(stdout(&help).contains("Examples:"));
    let completions = run(&["completions", "bash"]).await;
    assert!(completions.status.success());
    assert!(stdout(&completions).contains("hubctl"));
    for subcommand in ["status", "replay", "rebuild", "swap", "verify"] {
        assert!(stdout(&completions).contains(subcommand), "{subcommand}");
    }
    let usage = run(&["rebuild"]).await;
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a missing argument is a usage error"
    );
    // Nothing listens there: exit 1, saying so.
    let unreachable = run(&["--hub", "http://127.0.0.1:9", "status"]).await;
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        stderr(&unreachable).contains("connecting to the hub"),
        "{}",
        stderr(&unreachable)
    );
}
