//! The deployment file: what it sets, what the environment overrides, and
//! each error with its message.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumpsteak_aura_deploy::{ConfigError, Deployment, TrustFiles};
use rumpsteak_aura_net::tcp::{MeshAddress, MeshTransport};
use rumpsteak_aura_net::tls::dev::{DevCa, self_signed};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Buyer,
    Coordinator,
    Seller,
}

const ROLES: [Role; 3] = [Role::Buyer, Role::Coordinator, Role::Seller];

const NO_ENV: [(&str, &str); 0] = [];

/// A fresh directory under the system's temporary directory, removed when
/// dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "rumpsteak-deploy-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(text: &str) -> Result<Deployment, ConfigError> {
    Deployment::parse(text, "mesh.toml", NO_ENV)
}

const THREE_ROLES: &str = r#"
transport = "tcp"
session = "shop-17"

[roles.Buyer]
address = "localhost:7001"
bind = "[::]:7001"

[roles.Coordinator]
address = "127.0.0.2:7002"
bind = "0.0.0.0:7002"

[roles.Seller]
address = "seller.shop.internal:7003"

[limits]
wiring_deadline = "12s"
retry_initial = "5ms"
retry_max = "100ms"
connect_timeout = "3s"
handshake_timeout = "4s"
read_deadline = "1m"
keepalive = "none"
linger = "250ms"
max_pending_handshakes = 64
listen_backlog = 128
max_frame_len = 1048576
"#;

#[test]
fn a_file_sets_roles_addresses_and_limits() {
    let deployment = parse(THREE_ROLES).unwrap();
    assert_eq!(deployment.transport(), MeshTransport::Tcp);
    assert_eq!(deployment.session(), Some("shop-17"));
    let buyer = deployment.role("Buyer").unwrap();
    assert_eq!(buyer.address(), Some(&MeshAddress::name("localhost", 7001)));
    assert_eq!(buyer.bind().unwrap().to_string(), "[::]:7001");
    assert!(deployment.trust().is_none());

    let options = deployment.tcp_options("Seller").unwrap();
    assert_eq!(options.session_id(), "shop-17");
    assert_eq!(options.connect_timeout(), Duration::from_secs(3));
    assert_eq!(options.handshake_timeout(), Duration::from_secs(4));
    assert_eq!(options.read_deadline(), Some(Duration::from_secs(60)));
    assert_eq!(options.keepalive(), None);
    assert_eq!(options.linger(), Duration::from_millis(250));
    assert_eq!(options.max_pending_handshakes(), 64);
    assert_eq!(options.listen_backlog(), 128);
    assert_eq!(options.max_frame_len(), 1 << 20);
    assert!(options.tls().is_none());

    let mesh = deployment.mesh(ROLES, &Role::Seller).unwrap();
    assert_eq!(mesh.deadline(), Duration::from_secs(12));
    assert_eq!(mesh.options(), &options);
    // The protocol's order, whatever the file's.
    let rows: Vec<(Role, String)> = mesh
        .entries()
        .map(|(r, e)| (*r, e.address().to_string()))
        .collect();
    assert_eq!(
        rows,
        [
            (Role::Buyer, "localhost:7001".to_string()),
            (Role::Coordinator, "127.0.0.2:7002".to_string()),
            (Role::Seller, "seller.shop.internal:7003".to_string()),
        ]
    );
}

#[test]
fn the_environment_overrides_the_file_and_can_add_a_role() {
    let text = r#"
        [roles.Buyer]
        address = "localhost:7001"
        [roles.Coordinator]
        address = "127.0.0.2:7002"
        [limits]
        wiring_deadline = "12s"
    "#;
    let env = [
        ("RUMPSTEAK_ROLE_BUYER_ADDRESS", "buyer.shop.internal:7101"),
        ("RUMPSTEAK_ROLE_SELLER_ADDRESS", "[::1]:7103"),
        ("RUMPSTEAK_ROLE_SELLER_BIND", "[::]:7103"),
        ("RUMPSTEAK_LIMITS_WIRING_DEADLINE", "3s"),
        ("RUMPSTEAK_SESSION", "from-env"),
        // Not ours: ignored.
        ("HOME", "/root"),
        ("RUMPSTEAK_SIM_SEED", "7"),
    ];
    let deployment = Deployment::parse(text, "mesh.toml", env).unwrap();
    assert_eq!(deployment.session(), Some("from-env"));
    let mesh = deployment.mesh(ROLES, &Role::Buyer).unwrap();
    assert_eq!(mesh.deadline(), Duration::from_secs(3));
    let rows: Vec<String> = mesh
        .entries()
        .map(|(_, e)| format!("{} bind {:?}", e.address(), e.bind().map(|b| b.to_string())))
        .collect();
    assert_eq!(
        rows,
        [
            "buyer.shop.internal:7101 bind None",
            "127.0.0.2:7002 bind None",
            "[::1]:7103 bind Some(\"[::]:7103\")",
        ]
    );
}

#[test]
fn a_missing_role_is_named_with_the_key_and_the_variable() {
    let text = r#"
        [roles.Buyer]
        address = "localhost:7001"
        [roles.Coordinator]
        address = "localhost:7002"
    "#;
    let err = parse(text).unwrap().mesh(ROLES, &Role::Buyer).unwrap_err();
    assert!(matches!(&err, ConfigError::MissingRole { role, .. } if role == "Seller"));
    assert_eq!(
        err.to_string(),
        "mesh.toml: roles.Seller: the protocol's role `Seller` has no address \
         (add `[roles.Seller]` with `address = \"host:port\"`, or set RUMPSTEAK_ROLE_SELLER_ADDRESS)"
    );
    // A table without an address is missing it just the same.
    let text = format!("{text}\n[roles.Seller]\nbind = \"0.0.0.0:7003\"\n");
    let err = parse(&text).unwrap().mesh(ROLES, &Role::Buyer).unwrap_err();
    assert!(matches!(&err, ConfigError::MissingRole { role, .. } if role == "Seller"));
}

#[test]
fn a_role_the_protocol_does_not_have_is_refused() {
    let text = format!("{THREE_ROLES}\n[roles.Auditor]\naddress = \"localhost:7009\"\n");
    let err = parse(&text).unwrap().mesh(ROLES, &Role::Buyer).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesh.toml: roles.Auditor: `Auditor` is not a role of this protocol \
         (its roles: `Buyer`, `Coordinator`, `Seller`)"
    );
    // A misspelt role variable too.
    let env = [("RUMPSTEAK_ROLE_SELER_ADDRESS", "localhost:7003")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env)
        .unwrap()
        .mesh(ROLES, &Role::Buyer)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "RUMPSTEAK_ROLE_SELER_ADDRESS (for mesh.toml: roles.SELER.address): `SELER` is not a role \
         of this protocol (its roles: `Buyer`, `Coordinator`, `Seller`)"
    );
    // A misspelt setting variable.
    let env = [("RUMPSTEAK_LIMITS_WIRING_DEADLIN", "3s")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "RUMPSTEAK_LIMITS_WIRING_DEADLIN (for mesh.toml: (none)): `RUMPSTEAK_LIMITS_WIRING_DEADLIN` \
             is not a setting"
        ),
        "{err}"
    );
}

#[test]
fn a_malformed_address_is_named_with_the_file_and_the_key() {
    let text = THREE_ROLES.replace("seller.shop.internal:7003", "seller.shop.internal:70003");
    let err = parse(&text).unwrap_err();
    assert!(matches!(err, ConfigError::Address { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "mesh.toml: roles.Seller.address: `seller.shop.internal:70003`: \
         the port `70003` is not a number from 0 to 65535"
    );
    let text = THREE_ROLES.replace("[::]:7001", "::7001");
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "mesh.toml: roles.Buyer.bind: `::7001`: an IPv6 address needs brackets, as in `[::1]:7000`"
    );
    // From the environment: the variable is named, and the key it is for.
    let env = [("RUMPSTEAK_ROLE_COORDINATOR_ADDRESS", "coordinator")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RUMPSTEAK_ROLE_COORDINATOR_ADDRESS (for mesh.toml: roles.Coordinator.address): \
         `coordinator` has no port (write `host:port`)"
    );
}

#[test]
fn bad_values_and_unknown_keys_are_named() {
    let text = THREE_ROLES.replace("\"12s\"", "\"12 parsecs\"");
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "mesh.toml: limits.wiring_deadline: `12 parsecs` is not a duration \
         (a number and a unit: `250ms`, `15s`, `2m`, `1h`)"
    );
    let text = THREE_ROLES.replace("transport = \"tcp\"", "transport = \"carrier pigeon\"");
    let err = parse(&text).unwrap_err().to_string();
    assert!(
        err.starts_with("mesh.toml: transport: `carrier pigeon` is not a transport"),
        "{err}"
    );
    let env = [("RUMPSTEAK_LIMITS_LISTEN_BACKLOG", "99999999999")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RUMPSTEAK_LIMITS_LISTEN_BACKLOG (for mesh.toml: limits.listen_backlog): \
         `99999999999` is not a whole number from 0 to 4294967295"
    );
    // A misspelt key: the TOML parser names it, with the line.
    let text = THREE_ROLES.replace(
        "address = \"localhost:7001\"",
        "adress = \"localhost:7001\"",
    );
    let err = parse(&text).unwrap_err();
    let ConfigError::Syntax { line, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*line, 6, "{err}");
    assert!(
        err.to_string()
            .starts_with("mesh.toml: line 6, column 1: unknown field `adress`"),
        "{err}"
    );
    // Not TOML at all.
    let err = parse("[roles.Buyer\naddress = 1").unwrap_err();
    assert!(err.to_string().starts_with("mesh.toml: line 1"), "{err}");
}

#[test]
fn an_unreadable_file_is_named() {
    let err = Deployment::load_with_env("/nonexistent/mesh.toml", NO_ENV).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/mesh.toml: cannot read the deployment file: "),
        "{err}"
    );
}

/// Writes a CA and each role's certificate and key into `dir`, and a
/// deployment file naming them (relative names, resolved against the
/// file's directory).
fn tls_files(dir: &TempDir) -> PathBuf {
    let ca = DevCa::new("deploy test CA").unwrap();
    dir.write("ca.pem", ca.cert_pem());
    for role in ["Buyer", "Coordinator", "Seller"] {
        let issued = ca.issue(&[role]).unwrap();
        let stem = role.to_lowercase();
        dir.write(&format!("{stem}.pem"), &issued.cert_pem);
        dir.write(&format!("{stem}.key"), &issued.key_pem);
    }
    let text = r#"
        [tls]
        ca = "ca.pem"
        [roles.Buyer]
        address = "localhost:7001"
        cert = "buyer.pem"
        key = "buyer.key"
        [roles.Coordinator]
        address = "localhost:7002"
        cert = "coordinator.pem"
        key = "coordinator.key"
        [roles.Seller]
        address = "localhost:7003"
        cert = "seller.pem"
        key = "seller.key"
    "#;
    dir.write("mesh.toml", text)
}

#[test]
fn identities_load_from_files_next_to_the_deployment_file() {
    let dir = TempDir::new("tls");
    let file = tls_files(&dir);
    let deployment = Deployment::load_with_env(&file, NO_ENV).unwrap();
    assert!(matches!(deployment.trust(), Some(TrustFiles::Ca(p)) if p == &dir.0.join("ca.pem")));
    let identity = deployment.identity("Seller").unwrap().unwrap();
    assert_eq!(identity.role(), "Seller");
    let mesh = deployment.mesh(ROLES, &Role::Coordinator).unwrap();
    assert_eq!(mesh.options().tls().unwrap().role(), "Coordinator");
}

#[test]
fn an_unreadable_certificate_is_named_with_the_key_and_the_path() {
    let dir = TempDir::new("unreadable");
    let file = tls_files(&dir);
    std::fs::remove_file(dir.0.join("seller.key")).unwrap();
    let deployment = Deployment::load_with_env(&file, NO_ENV).unwrap();
    // Another role's missing key is no concern of the buyer's machine.
    deployment.mesh(ROLES, &Role::Buyer).unwrap();
    let err = deployment.mesh(ROLES, &Role::Seller).unwrap_err();
    let ConfigError::Certificate { path, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &dir.0.join("seller.key"));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: roles.Seller.key: cannot read `{}`: No such file or directory (os error 2)",
            file.display(),
            dir.0.join("seller.key").display()
        )
    );
    // The CA, overridden by the environment with a file that is not there.
    let env = [("RUMPSTEAK_TLS_CA", "/nonexistent/ca.pem")];
    let err = Deployment::load_with_env(&file, env)
        .unwrap()
        .identity("Buyer")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "RUMPSTEAK_TLS_CA (for {}: tls.ca): cannot read `/nonexistent/ca.pem`: \
             No such file or directory (os error 2)",
            file.display()
        )
    );
    // A file that is there but holds no certificate.
    dir.write("buyer.pem", "not a certificate\n");
    let err = deployment.identity("Buyer").unwrap_err();
    assert!(matches!(err, ConfigError::Identity { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: roles.Buyer.cert: certificate chain: ",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn tls_without_a_role_certificate_or_a_trust_source_is_named() {
    let text = "[tls]\nca = \"ca.pem\"\n[roles.Buyer]\naddress = \"localhost:7001\"\n";
    let err = parse(text).unwrap().identity("Buyer").unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesh.toml: tls.ca: cannot read `ca.pem`: No such file or directory (os error 2)"
    );
    let dir = TempDir::new("nocert");
    dir.write("ca.pem", DevCa::new("ca").unwrap().cert_pem());
    let file = dir.write("mesh.toml", text);
    let err = Deployment::load_with_env(&file, NO_ENV)
        .unwrap()
        .identity("Buyer")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: roles.Buyer.cert: missing: its certificate chain (PEM) of role `Buyer`, \
             needed with [tls] (or set RUMPSTEAK_ROLE_BUYER_CERT)",
            file.display()
        )
    );
    let err = parse("[tls]\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "mesh.toml: tls.ca: missing: whom to trust: `ca = \"ca.pem\"` or `pinned = true`"
    );
}

#[test]
fn pinned_certificates_are_each_roles_own() {
    let dir = TempDir::new("pinned");
    let mut text = String::from("[tls]\npinned = true\n");
    for role in ["Buyer", "Coordinator", "Seller"] {
        let issued = self_signed(&[role]).unwrap();
        let stem = role.to_lowercase();
        dir.write(&format!("{stem}.pem"), &issued.cert_pem);
        dir.write(&format!("{stem}.key"), &issued.key_pem);
        text.push_str(&format!(
            "[roles.{role}]\naddress = \"localhost:7001\"\ncert = \"{stem}.pem\"\nkey = \"{stem}.key\"\n"
        ));
    }
    let file = dir.write("mesh.toml", &text);
    let deployment = Deployment::load_with_env(&file, NO_ENV).unwrap();
    assert!(matches!(deployment.trust(), Some(TrustFiles::Pinned)));
    let identity = deployment.identity("Buyer").unwrap().unwrap();
    assert!(
        format!("{:?}", identity.trust()).contains("Seller"),
        "{:?}",
        identity.trust()
    );
}

/// Three roles wired over TLS from one deployment file, each as its own
/// process would: `localhost` names, distinct loopback addresses and
/// wildcard binds.
#[tokio::test]
async fn a_deployment_file_wires_a_tls_mesh() {
    let dir = TempDir::new("wire");
    let file = tls_files(&dir);
    let free = |ip: &str| {
        std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (pb, pc) = (free("::"), free("0.0.0.0"));
    let env = [
        (
            "RUMPSTEAK_ROLE_BUYER_ADDRESS".to_string(),
            format!("localhost:{pb}"),
        ),
        (
            "RUMPSTEAK_ROLE_BUYER_BIND".to_string(),
            format!("[::]:{pb}"),
        ),
        (
            "RUMPSTEAK_ROLE_COORDINATOR_ADDRESS".to_string(),
            format!("127.0.0.2:{pc}"),
        ),
        (
            "RUMPSTEAK_ROLE_COORDINATOR_BIND".to_string(),
            format!("0.0.0.0:{pc}"),
        ),
        (
            "RUMPSTEAK_LIMITS_WIRING_DEADLINE".to_string(),
            "10s".to_string(),
        ),
    ];
    let deployment = Deployment::load_with_env(&file, env).unwrap();
    let wire = |me: Role| {
        let mesh = deployment.mesh(ROLES, &me).unwrap();
        async move { mesh.connect(&me).await }
    };
    let (b, c, s) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(
            wire(Role::Buyer),
            wire(Role::Coordinator),
            wire(Role::Seller)
        )
    })
    .await
    // Generous: wiring on loopback takes milliseconds.
    .expect("wired within 20 s");
    let (mut b, c, mut s) = (b.unwrap(), c.unwrap(), s.unwrap());
    assert_eq!(c.len(), 2);
    s[0].1.send_frame(b"over TLS".to_vec()).await.unwrap();
    assert_eq!(b[1].1.recv_frame().await.unwrap(), b"over TLS");
    // Each peer's identity is the certificate it proved.
    assert!(b[1].1.peer_identity().is_some());
}

/// Where the child of `the_process_environment_may_hold_non_utf8_variables`
/// finds its file. Not a `RUMPSTEAK_` name: those are the deployment's.
const CHILD_FILE: &str = "DEPLOY_TEST_CHILD_FILE";

/// `Deployment::load` with this process's environment, saying how it
/// went: this test binary started again by the test below.
#[test]
#[ignore = "run by `the_process_environment_may_hold_non_utf8_variables` in a child process"]
fn load_in_a_child_process() {
    let file = std::env::var(CHILD_FILE).expect("started by the parent test");
    match Deployment::load(&file) {
        Ok(deployment) => println!("loaded {} roles", deployment.roles().len()),
        Err(e) => println!("error: {e}"),
    }
}

/// A variable of another tool whose value is not UTF-8 (a file name in
/// some legacy encoding, say) is none of the deployment's business: the
/// file loads, where `std::env::vars()` would panic. One of its own that
/// is not UTF-8 is an error naming it.
#[cfg(unix)]
#[test]
fn the_process_environment_may_hold_non_utf8_variables() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    let dir = TempDir::new("non-utf8");
    let file = dir.write("mesh.toml", THREE_ROLES);
    let run = |name: &str| {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "load_in_a_child_process",
                "--nocapture",
            ])
            .env(CHILD_FILE, &file)
            .env(name, OsString::from_vec(b"caf\xe9".to_vec()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "{}\n{stdout}\n{stderr}",
            output.status
        );
        stdout
    };
    let stdout = run("OTHER_TOOL_NAME");
    assert!(stdout.contains("loaded 3 roles"), "{stdout}");
    let stdout = run("RUMPSTEAK_SESSION");
    assert!(
        stdout.contains(&format!(
            "error: RUMPSTEAK_SESSION (for {}: (environment)): `caf\u{fffd}` is not valid UTF-8",
            file.display()
        )),
        "{stdout}"
    );
}

/// Values the network would refuse only at wiring time, after retries
/// until the deadline, are refused when the file loads, naming the key:
/// port 0 (no peer can dial it) and a session identifier longer than the
/// handshake carries.
#[test]
fn port_zero_and_an_overlong_session_are_refused_when_loading() {
    let text = THREE_ROLES.replace("127.0.0.2:7002", "127.0.0.2:0");
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "mesh.toml: roles.Coordinator.address: `127.0.0.2:0` has port 0: peers dial the port \
         written here, so give the one the role listens on"
    );
    let env = [("RUMPSTEAK_ROLE_BUYER_BIND", "[::]:0")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "RUMPSTEAK_ROLE_BUYER_BIND (for mesh.toml: roles.Buyer.bind): `[::]:0` has port 0"
        ),
        "{err}"
    );
    let long = "s".repeat(256);
    let text = THREE_ROLES.replace("shop-17", &long);
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        format!(
            "mesh.toml: session: `{long}` is longer than 255 bytes, the most a session \
             identifier may be"
        )
    );
    // 255 bytes is still one.
    let text = THREE_ROLES.replace("shop-17", &"s".repeat(255));
    assert_eq!(parse(&text).unwrap().session().map(str::len), Some(255));
}

/// Without the check above, an overlong session identifier is found only
/// by the handshake: the role that only dials retries until the wiring
/// deadline. Kept to show what the check saves (and that the limit is the
/// handshake's).
#[tokio::test]
async fn an_overlong_session_fails_the_handshake() {
    let options = rumpsteak_aura_net::tcp::TcpOptions::new().with_session_id("s".repeat(256));
    let err = rumpsteak_aura_net::tcp::connect("127.0.0.1:9".parse().unwrap(), "A", "B", &options)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("longer than 255 bytes"), "{err}");
}

/// Two roles whose variables are spelt alike: a variable of that spelling
/// is refused, not given to one of them (or both) in silence; without
/// one, the file loads.
#[test]
fn a_variable_that_would_set_two_roles_is_refused() {
    let text = r#"
        [roles.order-desk]
        address = "localhost:7001"
        [roles.order_desk]
        address = "localhost:7002"
    "#;
    let deployment = parse(text).unwrap();
    assert_eq!(deployment.roles().len(), 2);
    let env = [("RUMPSTEAK_ROLE_ORDER_DESK_ADDRESS", "127.0.0.9:7009")];
    let err = Deployment::parse(text, "mesh.toml", env).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RUMPSTEAK_ROLE_ORDER_DESK_ADDRESS (for mesh.toml: roles.order-desk): \
         `RUMPSTEAK_ROLE_ORDER_DESK_ADDRESS` would set both roles `order-desk` and `order_desk`, \
         whose variables are spelt alike: rename one of them in the file"
    );
}

/// QUIC without `[tls]` is refused when the file loads: its sessions
/// always run TLS, and without identities every dial would fail until the
/// wiring deadline.
#[cfg(feature = "quic")]
#[test]
fn quic_without_tls_is_refused_when_loading() {
    let text = THREE_ROLES.replace("transport = \"tcp\"", "transport = \"quic\"");
    assert_eq!(
        parse(&text).unwrap_err().to_string(),
        "mesh.toml: tls: missing: `[tls]` with whom to trust and each role's `cert` and `key`: \
         mesh.toml: transport is \"quic\", which always runs TLS 1.3"
    );
    let env = [("RUMPSTEAK_TRANSPORT", "quic")];
    let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
    assert!(
        err.to_string().ends_with(
            "RUMPSTEAK_TRANSPORT (for mesh.toml: transport) is \"quic\", which always runs TLS 1.3"
        ),
        "{err}"
    );
    // With [tls], QUIC loads.
    let dir = TempDir::new("quic");
    let file = tls_files(&dir);
    let env = [("RUMPSTEAK_TRANSPORT", "quic")];
    let deployment = Deployment::load_with_env(&file, env).unwrap();
    assert_eq!(deployment.transport(), MeshTransport::Quic);
}

/// A zero wiring deadline, connect or handshake timeout or read deadline
/// would fail every attempt at once: refused when the file loads. A zero
/// linger or retry wait is fine.
#[test]
fn zero_deadlines_and_timeouts_are_refused() {
    for key in [
        "wiring_deadline",
        "connect_timeout",
        "handshake_timeout",
        "read_deadline",
    ] {
        let var = format!("RUMPSTEAK_LIMITS_{}", key.to_uppercase());
        let env = [(var.clone(), "0s".to_string())];
        let err = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{var} (for mesh.toml: limits.{key}): `0s` is zero, which fails every attempt \
                 at once: give a duration above 0"
            )
        );
    }
    let text = THREE_ROLES.replace("\"12s\"", "\"0ms\"");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .starts_with("mesh.toml: limits.wiring_deadline: `0ms` is zero"),
    );
    let text = THREE_ROLES.replace("linger = \"250ms\"", "linger = \"0s\"");
    assert_eq!(parse(&text).unwrap().limits().linger, Some(Duration::ZERO));
    let env = [("RUMPSTEAK_LIMITS_READ_DEADLINE", "none")];
    let deployment = Deployment::parse(THREE_ROLES, "mesh.toml", env).unwrap();
    assert_eq!(deployment.limits().read_deadline, Some(None));
}
