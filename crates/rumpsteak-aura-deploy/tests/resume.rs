//! The `[resume]` section: the policy it sets, what the environment
//! overrides, each error with its message, and a resumable mesh wired
//! from a deployment file.

use std::time::Duration;

use rumpsteak_aura_deploy::{ConfigError, Deployment};
use rumpsteak_aura_resume::OnFull;

const NO_ENV: [(&str, &str); 0] = [];

const FILE: &str = r#"
session = "shop-17"

[roles.Buyer]
address = "127.0.0.1:7001"

[roles.Seller]
address = "127.0.0.1:7003"

[resume]
replay_frames = 256
replay_bytes = 65536
on_full = "fail"
receive_window = 32
ack_every = 8
ack_delay = "5ms"
heartbeat = "200ms"
idle_timeout = "3s"
reconnect_deadline = "2m"
backoff_initial = "2ms"
backoff_max = "300ms"
exchange_timeout = "4s"
identity_check = false
"#;

fn parse(text: &str) -> Result<Deployment, ConfigError> {
    Deployment::parse(text, "mesh.toml", NO_ENV)
}

#[test]
fn a_resume_section_sets_every_setting_of_the_policy() {
    let deployment = parse(FILE).unwrap();
    let r = deployment.resume();
    assert_eq!(r.replay_frames, Some(256));
    assert_eq!(r.on_full, Some(OnFull::Fail));
    assert_eq!(r.identity_check, Some(false));
    let config = r.policy().config_for("shop-17", "Seller", "Buyer");
    assert_eq!(
        (config.replay_frames(), config.replay_bytes()),
        (256, 65536)
    );
    assert_eq!(config.on_full(), OnFull::Fail);
    assert_eq!(config.receive_window(), 32);
    assert_eq!(config.ack_policy(), (8, Duration::from_millis(5)));
    assert_eq!(
        config.heartbeat(),
        (Duration::from_millis(200), Duration::from_secs(3))
    );
    assert_eq!(config.reconnect_deadline(), Duration::from_secs(120));
    assert_eq!(
        config.backoff(),
        (Duration::from_millis(2), Duration::from_millis(300))
    );
    assert_eq!(config.exchange_timeout(), Duration::from_secs(4));
    assert!(!config.identity_check());
    // The mesh's policy is this one, with the session and roles of a pair.
    let mesh = deployment
        .resume_mesh_named(["Buyer", "Seller"], &"Seller", |r: &&str| r.to_string())
        .unwrap();
    let config = mesh.policy().config_for("shop-17", "Seller", "Buyer");
    assert_eq!(config.replay_frames(), 256);
    assert_eq!(mesh.mesh().options().session_id(), "shop-17");
}

#[test]
fn without_the_section_the_defaults_hold_and_the_environment_can_set_them() {
    let text = FILE.split("[resume]").next().unwrap();
    let deployment = parse(text).unwrap();
    assert_eq!(deployment.resume(), &Default::default());
    let defaults = rumpsteak_aura_resume::ResumeConfig::new("", "", "");
    let config = deployment.resume().policy().config_for("s", "A", "B");
    assert_eq!(config.replay_frames(), defaults.replay_frames());
    assert_eq!(config.heartbeat(), defaults.heartbeat());
    assert_eq!(config.backoff(), defaults.backoff());

    let env = [
        ("RUMPSTEAK_RESUME_RECONNECT_DEADLINE", "7s"),
        ("RUMPSTEAK_RESUME_ON_FULL", "wait"),
    ];
    let deployment = Deployment::parse(FILE, "mesh.toml", env).unwrap();
    let r = deployment.resume();
    assert_eq!(r.reconnect_deadline, Some(Duration::from_secs(7)));
    assert_eq!(r.on_full, Some(OnFull::Wait));
    assert_eq!(r.replay_frames, Some(256), "the file's value stays");
}

#[test]
fn bad_resume_values_are_named_with_the_file_and_the_key() {
    let err = |from: &str, to: &str| {
        assert!(FILE.contains(from), "{from}");
        parse(&FILE.replace(from, to)).unwrap_err().to_string()
    };
    assert_eq!(
        err("on_full = \"fail\"", "on_full = \"maybe\""),
        "mesh.toml: resume.on_full: `maybe` is not `wait` or `fail`"
    );
    assert_eq!(
        err("replay_frames = 256", "replay_frames = 0"),
        "mesh.toml: resume.replay_frames: `0` is zero: give at least 1"
    );
    assert_eq!(
        err("reconnect_deadline = \"2m\"", "reconnect_deadline = \"0s\""),
        "mesh.toml: resume.reconnect_deadline: `0s` is zero, which fails every attempt at \
         once: give a duration above 0"
    );
    assert_eq!(
        err("ack_delay = \"5ms\"", "ack_delay = \"soon\""),
        "mesh.toml: resume.ack_delay: `soon` is not a duration \
         (a number and a unit: `250ms`, `15s`, `2m`, `1h`)"
    );
    assert_eq!(
        err("idle_timeout = \"3s\"", "idle_timeout = \"100ms\""),
        "mesh.toml: resume.idle_timeout: `100ms` leaves the idle timeout (100ms) shorter \
         than two heartbeats (200ms each): an idle link would be given up between heartbeats"
    );
    // Longer than one heartbeat is not enough: two must fit.
    assert!(
        err("idle_timeout = \"3s\"", "idle_timeout = \"399ms\"")
            .starts_with("mesh.toml: resume.idle_timeout: `399ms` leaves the idle timeout"),
    );
    assert!(parse(&FILE.replace("idle_timeout = \"3s\"", "idle_timeout = \"400ms\"")).is_ok());
    // Only a heartbeat, past the default idle timeout (10 s).
    let text = FILE
        .replace("heartbeat = \"200ms\"", "heartbeat = \"20s\"")
        .replace("idle_timeout = \"3s\"\n", "");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .starts_with("mesh.toml: resume.heartbeat: `20s` leaves the idle timeout (10s)"),
    );
    // A misspelt key in the file, and in the environment.
    let e = err("replay_bytes", "replay_byte");
    assert!(e.contains("unknown field `replay_byte`"), "{e}");
    let env = [("RUMPSTEAK_RESUME_REPLAY_BYTE", "1")];
    let e = Deployment::parse(FILE, "mesh.toml", env).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("RUMPSTEAK_RESUME_REPLAY_BYTE (for mesh.toml: (none)): "),
        "{e}"
    );
    let env = [("RUMPSTEAK_RESUME_IDENTITY_CHECK", "perhaps")];
    let e = Deployment::parse(FILE, "mesh.toml", env).unwrap_err();
    assert_eq!(
        e.to_string(),
        "RUMPSTEAK_RESUME_IDENTITY_CHECK (for mesh.toml: resume.identity_check): \
         `perhaps` is not `true` or `false`"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_file_wires_a_resumable_mesh() {
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let text = FILE
        .replace("127.0.0.1:7001", &format!("127.0.0.1:{}", port()))
        .replace("127.0.0.1:7003", &format!("127.0.0.1:{}", port()));
    let deployment = parse(&text).unwrap();
    let roles = ["Buyer", "Seller"];
    let names = |r: &&str| r.to_string();
    let buyer = deployment
        .resume_mesh_named(roles, &"Buyer", names)
        .unwrap();
    let seller = deployment
        .resume_mesh_named(roles, &"Seller", names)
        .unwrap();
    // Only a hang takes this long.
    let (b, s) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(buyer.connect(&"Buyer"), seller.connect(&"Seller"))
    })
    .await
    .unwrap();
    let (mut b, mut s) = (b.unwrap(), s.unwrap());
    s.sessions[0].1.send_frame(b"hello".to_vec()).await.unwrap();
    assert_eq!(b.sessions[0].1.recv_frame().await.unwrap(), b"hello");
    let stats = b.handle(&"Seller").unwrap().stats();
    assert_eq!((stats.frames_received, stats.reconnects), (1, 0));
}

#[test]
fn a_backoff_that_never_waits_or_is_upside_down_is_refused() {
    let err = |from: &str, to: &str| {
        assert!(FILE.contains(from), "{from}");
        parse(&FILE.replace(from, to)).unwrap_err().to_string()
    };
    // A zero first wait stays zero when doubled: every failed attempt
    // would be retried at once, as fast as the machine goes, until the
    // reconnect deadline.
    assert_eq!(
        err("backoff_initial = \"2ms\"", "backoff_initial = \"0s\""),
        "mesh.toml: resume.backoff_initial: `0s` is zero, which retries a failed \
         reconnection at once, over and over: give a duration above 0"
    );
    // A longest wait below the first one would be raised to it unsaid.
    assert_eq!(
        err("backoff_max = \"300ms\"", "backoff_max = \"1ms\""),
        "mesh.toml: resume.backoff_max: `1ms` is below backoff_initial (2ms): \
         give at least that"
    );
    // Only a first wait, past the default longest one (1 s).
    let text = FILE
        .replace("backoff_initial = \"2ms\"", "backoff_initial = \"5s\"")
        .replace("backoff_max = \"300ms\"\n", "");
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "mesh.toml: resume.backoff_initial: `5s` is above backoff_max (1s, the default): \
         give at most that"
    );
    // From the environment too, named by its variable.
    let env = [("RUMPSTEAK_RESUME_BACKOFF_INITIAL", "0ms")];
    let e = Deployment::parse(FILE, "mesh.toml", env).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("RUMPSTEAK_RESUME_BACKOFF_INITIAL (for mesh.toml: resume.backoff_initial): `0ms` is zero"),
        "{e}"
    );
}
