//! SIGTERM in the middle of a protocol: the role closes its sessions, its
//! peer sees a closed channel at once (not a read-deadline timeout), and
//! the process exits with a non-zero status saying it was interrupted.
//!
//! The role that gets the signal runs in a child process: this test
//! binary started again with only `role_b_in_a_child_process` selected
//! (an ignored test, so a normal run skips it), told where the deployment
//! file is by an environment variable.
#![cfg(unix)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rumpsteak_aura::ChoreoHandler;
use rumpsteak_aura_deploy::{Deployment, Shutdown};
use rumpsteak_aura_handler::{RumpsteakEndpoint, RumpsteakHandler};
use tokio::io::AsyncReadExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Role {
    A,
    B,
}

impl rumpsteak_aura::Role for Role {
    type Message = ();
    fn seal(&mut self) {}
    fn is_sealed(&self) -> bool {
        false
    }
}

const ROLES: [Role; 2] = [Role::A, Role::B];

/// Where the child finds the deployment file. Not a `RUMPSTEAK_` name: the
/// deployment refuses variables of its prefix that are not its settings.
const CHILD_CONFIG: &str = "DEPLOY_TEST_CHILD_CONFIG";

/// The child: B wires with A from the file, says it is ready, and waits
/// for a message A never sends, until the signal comes.
#[tokio::test]
#[ignore = "run by `sigterm_mid_protocol_closes_the_peers_channel` as a child process"]
async fn role_b_in_a_child_process() {
    let config = std::env::var(CHILD_CONFIG).expect("started by the parent test");
    let mut shutdown = Shutdown::install().unwrap();
    let deployment = Deployment::load(&config).unwrap();
    let mesh = deployment.mesh(ROLES, &Role::B).unwrap();
    let sessions = shutdown
        .or_interrupted(mesh.connect(&Role::B))
        .await
        .unwrap()
        .unwrap();
    let mut ep = RumpsteakEndpoint::new(Role::B);
    for (peer, session) in sessions {
        ep.register_session(peer, session);
    }
    let outcome = shutdown
        .run_until_shutdown(&mut ep, async |ep: &mut RumpsteakEndpoint<Role>| {
            let mut handler = RumpsteakHandler::<Role, ()>::new();
            handler.send(ep, Role::A, &"ready".to_string()).await?;
            handler.recv::<String>(ep, Role::A).await
        })
        .await;
    match outcome {
        Ok(answer) => {
            eprintln!("B: finished: {answer:?}");
            std::process::exit(0);
        }
        Err(interrupted) => {
            eprintln!("B: {interrupted}");
            // Stay alive, sockets and all, until the parent has seen its
            // channel closed (it then closes this process's stdin): the
            // close must be `run_until_shutdown`'s, not the kernel's at
            // exit. Bounded, should the parent be gone.
            let mut rest = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                tokio::io::stdin().read_to_end(&mut rest),
            )
            .await;
            std::process::exit(interrupted.exit_code());
        }
    }
}

#[tokio::test]
async fn sigterm_mid_protocol_closes_the_peers_channel() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "rumpsteak-deploy-sigterm-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A read deadline of a minute: if B's sessions were not closed, A's
    // receive would end only then (or at TCP keepalive's verdict, later).
    let text = format!(
        "[roles.A]\naddress = \"127.0.0.2:{port}\"\nbind = \"0.0.0.0:{port}\"\n\
         [roles.B]\naddress = \"localhost:9\"\n\
         [limits]\nwiring_deadline = \"20s\"\nread_deadline = \"60s\"\n"
    );
    let config: PathBuf = dir.join("mesh.toml");
    std::fs::write(&config, text).unwrap();

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "role_b_in_a_child_process",
            "--nocapture",
        ])
        .env(CHILD_CONFIG, &config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let deployment =
        Deployment::load_with_env(&config, std::iter::empty::<(String, String)>()).unwrap();
    let mesh = deployment.mesh(ROLES, &Role::A).unwrap();
    // Generous bounds throughout: each step takes milliseconds, but the
    // child is a fresh process on a loaded 2-core machine.
    let mut sessions = tokio::time::timeout(Duration::from_secs(30), mesh.connect(&Role::A))
        .await
        .expect("B wired within 30 s")
        .unwrap();
    let mut ep = RumpsteakEndpoint::new(Role::A);
    ep.register_session(Role::B, sessions.remove(0).1);
    let mut handler = RumpsteakHandler::<Role, ()>::new();
    let ready: String =
        tokio::time::timeout(Duration::from_secs(10), handler.recv(&mut ep, Role::B))
            .await
            .expect("B ready within 10 s")
            .unwrap();
    assert_eq!(ready, "ready");

    // B now waits for A, mid-protocol. Stop it.
    // Held open until A has seen its channel closed; the child exits
    // only when it is closed.
    let hold = child.stdin.take().unwrap();
    let pid = rustix::process::Pid::from_raw(child.id().unwrap() as i32).unwrap();
    let signalled = Instant::now();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        handler.recv::<String>(&mut ep, Role::B),
    )
    .await
    .expect("A's receive ended within 10 s")
    .unwrap_err();
    let took = signalled.elapsed();
    assert!(err.is_closed(), "a closed channel, got {err:?}");
    // Closing takes milliseconds; 5 s of slack for a loaded machine is
    // still far under the 60 s read deadline, so a timeout cannot be what
    // ended the receive.
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    // B is still running: the channel was closed by B's shutdown, not by
    // its process ending. Now let it exit.
    assert!(
        child.try_wait().unwrap().is_none(),
        "B exited before A saw the close"
    );
    drop(hold);

    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("B exited within 10 s")
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    eprintln!(
        "A saw the channel closed {took:?} after SIGTERM; B said: {}",
        stderr.trim()
    );
    assert_eq!(status.code(), Some(143), "{status}; stderr: {stderr}");
    assert!(
        stderr.contains(
            "B: the protocol was interrupted by SIGTERM before it finished; \
             closed its 1 session, so the peer sees its channel closed"
        ),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
