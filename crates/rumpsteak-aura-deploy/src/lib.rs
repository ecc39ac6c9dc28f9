//! Running the roles of a rumpsteak-aura protocol on separate machines.
//!
//! - [`Deployment`] loads one TOML file that describes the deployment:
//!   the protocol's roles with the addresses their peers dial (host names
//!   or IP addresses) and the addresses they listen on, the files of their
//!   TLS identities, and the limits of wiring and of the sessions; every
//!   key can be overridden by an environment variable
//!   (`RUMPSTEAK_ROLE_SELLER_ADDRESS`). Each process loads the same file
//!   and builds its role's [`Mesh`](rumpsteak_aura_net::tcp::Mesh) from
//!   it. Every error names the file and the key at fault
//!   (`mesh.toml: roles.Seller.address: ...`). With a `[resume]` section
//!   (the policy: replay limits, `on_full`, deadlines, backoff,
//!   heartbeat), [`Deployment::resume_mesh`] builds a
//!   [`ResumeMesh`](rumpsteak_aura_resume::ResumeMesh) instead, whose
//!   sessions survive dropped connections.
//! - [`Shutdown`] turns SIGTERM and ctrl-c into an orderly stop: the
//!   protocol is dropped where it stands, every session is closed so the
//!   peers see a closed channel at once, and the caller gets
//!   [`Interrupted`], with a non-zero exit status to report.
//!
//! # Examples
//!
//! One role's `main`, as it would run on its own machine:
//!
//! ```no_run
//! use rumpsteak_aura_deploy::{Deployment, Shutdown};
//!
//! #[derive(Clone, Copy, Debug, PartialEq, Eq)]
//! enum Role { Buyer, Seller }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let mut shutdown = Shutdown::install()?;
//!     let deployment = Deployment::load("mesh.toml")?;
//!     let mesh = deployment.mesh([Role::Buyer, Role::Seller], &Role::Seller)?;
//!     let mut sessions = shutdown.or_interrupted(mesh.connect(&Role::Seller)).await??;
//!     let outcome = shutdown
//!         .run_until_shutdown(&mut sessions, async |s: &mut Vec<_>| {
//!             let (_, buyer) = &mut s[0];
//!             buyer.send_frame(b"welcome".to_vec()).await
//!         })
//!         .await;
//!     match outcome {
//!         Ok(sent) => Ok(sent?),
//!         Err(interrupted) => {
//!             eprintln!("Seller: {interrupted}");
//!             std::process::exit(interrupted.exit_code());
//!         }
//!     }
//! }
//! ```

mod config;
mod shutdown;

pub use config::{
    ConfigError, Deployment, ENV_PREFIX, Limits, Location, ResumeSettings, RoleConfig, TrustFiles,
    role_env_var,
};
pub use shutdown::{CloseSessions, Interrupted, Shutdown, StopSignal};
