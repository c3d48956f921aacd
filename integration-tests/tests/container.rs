//! The Docker image, through testcontainers: build `Dockerfile`, start the
//! container, and produce and consume through its published port with kcat.
//! Skipped, with a message, where no Docker daemon answers (as on the CI
//! machines, which have only the docker client).

use std::process::{Command, Stdio};
use std::time::Duration;

use skein_integration_tests::{repo_root, run_ok};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{GenericImage, ImageExt};

const IMAGE: &str = "skein-integration";
const TAG: &str = "latest";

fn docker_daemon_answers() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn the_image_serves_kafka_clients() {
    if !docker_daemon_answers() {
        eprintln!("SKIPPED the_image_serves_kafka_clients: no Docker daemon answers `docker info` on this machine");
        return;
    }
    run_ok(
        Command::new("docker").args(["build", "-t", &format!("{IMAGE}:{TAG}"), "."]).current_dir(repo_root()),
        Duration::from_secs(3600),
    );
    let container = GenericImage::new(IMAGE, TAG)
        .with_exposed_port(9092.tcp())
        .with_wait_for(WaitFor::message_on_stderr("skein is ready"))
        .with_env_var("SKEIN_ADVERTISED_LISTENERS", "PLAINTEXT://127.0.0.1:19092")
        .with_mapped_port(19092, 9092.tcp())
        .start()
        .expect("container starts");
    let bootstrap = "127.0.0.1:19092";
    let mut producer = Command::new("kcat")
        .args(["-b", bootstrap, "-P", "-t", "in-a-box"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat");
    std::io::Write::write_all(&mut producer.stdin.take().expect("stdin"), b"boxed\n").expect("write");
    assert!(producer.wait().expect("kcat exits").success());
    let out = run_ok(
        Command::new("kcat").args(["-b", bootstrap, "-C", "-t", "in-a-box", "-o", "beginning", "-e", "-q"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.trim(), "boxed");
    drop(container);
}
